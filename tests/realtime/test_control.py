"""Control messages (realtime/fanout/control.py): every kind sent is handled by the directory and
every kind handled is sent — checked on the source, as Zulip's test_events checks each
send_event — they leave from one sender only, and they cross Redis unchanged."""

from __future__ import annotations

import ast
import typing
from pathlib import Path

import pytest

from realtime.fanout.control import (
    Control,
    InvitationChanged,
    MemberChanged,
    RoomChanged,
    SessionsRevoked,
    SpaceChanged,
    from_wire,
    to_wire,
)

REALTIME = Path(__file__).resolve().parents[2] / "realtime"
KINDS = {cls.__name__ for cls in typing.get_args(Control)}


def _trees() -> dict[Path, ast.AST]:
    return {p: ast.parse(p.read_text()) for p in REALTIME.rglob("*.py")}


def _sent() -> set[str]:
    """Kinds built as the argument of a `.send(...)` call anywhere in realtime/."""
    sent = set()
    for tree in _trees().values():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "send":
                for arg in node.args:
                    if isinstance(arg, ast.Call) and isinstance(arg.func, ast.Name) and arg.func.id in KINDS:
                        sent.add(arg.func.id)
    return sent


def _handled() -> set[str]:
    """Kinds matched by a `case Kind(...)` in Directory.apply."""
    tree = ast.parse((REALTIME / "fanout" / "directory.py").read_text())
    apply = next(n for n in ast.walk(tree) if isinstance(n, ast.AsyncFunctionDef) and n.name == "apply")
    return {n.cls.id for n in ast.walk(apply) if isinstance(n, ast.MatchClass) and isinstance(n.cls, ast.Name)}


def test_every_kind_is_sent_and_handled():
    assert _sent() == KINDS, "a control message no service sends"
    assert _handled() == KINDS, "a control message the directory does not apply"


def test_only_the_sender_publishes_control_messages():
    """`bus.control(...)` is called by Changes.send alone: no service can publish a change
    without applying it to its own process first."""
    callers = []
    for path, tree in _trees().items():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "control":
                callers.append(path.relative_to(REALTIME).as_posix())
    assert callers == ["fanout/control.py"]


@pytest.mark.parametrize("message", [
    MemberChanged(3, 7), SpaceChanged(3), RoomChanged(3, 12), SessionsRevoked(7), InvitationChanged(7, 40),
])
def test_each_kind_crosses_the_wire_unchanged(message):
    assert from_wire(to_wire(message)) == message


@pytest.mark.parametrize("junk", [
    {"kind": "user_changed", "user_id": 1}, {"kind": "member_changed", "space_id": 1},
    {"kind": "space_changed", "space_id": "1"}, {"kind": "space_changed", "space_id": 1, "extra": 2},
    {"kind": "room_changed", "space_id": 1}, {"kind": "invitation_changed", "user_id": 1}, [1, 2], None,
])
def test_anything_else_from_the_bus_is_refused(junk):
    with pytest.raises(ValueError):
        from_wire(junk)
