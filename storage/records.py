"""`@record`: the dataclass for what storage takes and returns on the post path.

A frozen dataclass sets each field through `object.__setattr__` when it is built: 3.0–3.6 µs
for eleven fields on our build machine, against 0.35–0.6 µs for a plain slots dataclass, whose
`self.x = x` the interpreter turns into a direct slot store. A post makes six such records
(docs/performance.md, "Ingest"), and nothing ever changes one after it is built. So a record is
a plain slots dataclass at run time, and frozen to the type checker (PEP 681), which refuses any
assignment to a field; equality is by value as with any dataclass, and records are not hashed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar, dataclass_transform

T = TypeVar("T")


@dataclass_transform(frozen_default=True)
def record(cls: type[T]) -> type[T]:
    return dataclass(slots=True)(cls)
