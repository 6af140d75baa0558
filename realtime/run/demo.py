"""A ready-to-try project: two partner schools, their teachers and pupils, a parent, a moderator.
Its public view is turned on (a new project's is off until a teacher admin turns it on): the
README's tour and docs/protocol.md's examples show its public page.

Idempotent: running it again on the same database changes nothing and prints the same logins.
The passwords are public (they are printed and in the README): for trying TwinHub, never for a
real class.
"""

from __future__ import annotations

import asyncpg

from storage import accounts, mail, spaces
from storage.db import transaction
from storage.mail import NewMail

from ..services.auth import hash_password

SLUG = "water-lyon-krakow"
PASSWORD = "demo1234"  # 8 characters: within the 5–8 a teacher may give a pupil (seed 000)

LYON = "École Jean Moulin, Lyon"
KRAKOW = "Szkoła Podstawowa nr 12, Kraków"

# username, display name, school, role in the space (None: platform moderator)
PEOPLE = [
    ("claire.martin", "Claire Martin", LYON, "teacher_admin"),
    ("piotr.nowak", "Piotr Nowak", KRAKOW, "teacher_admin"),
    ("luc.bernard", "Luc Bernard", LYON, "teacher_member"),
    ("hugo.d", "Hugo D.", LYON, "pupil_admin"),
    ("ana.l", "Ana L.", LYON, "pupil_member"),
    ("ola.k", "Ola K.", KRAKOW, "pupil_member"),
    ("jan.w", "Jan W.", KRAKOW, "pupil_member"),
    ("parent.dupont", "M. Dupont (parent)", LYON, "visitor"),
    ("mod.eva", "Eva (TwinHub moderator)", "", None),
]

ROOMS = [
    ("home", "Home"),
    ("activities", "Water diary"),
    ("teachers_room", "Teachers' room"),
    ("pupils_corner", "Pupils' corner"),
    ("chat", "Chat"),
]


async def ensure_demo(pool: asyncpg.Pool) -> list[tuple[str, str, str, str]]:
    """Create the demo project if missing; return (username, password, role, school) rows."""
    space = await spaces.space_by_slug(pool, SLUG)
    created = space is None
    if space is None:
        space = await spaces.create_space(
            pool, slug=SLUG, name="Water in our towns / L'eau dans nos villes",
            description="Pupils in Lyon and Kraków follow the water of their towns, from the river to the tap.",
            public=True,  # turned on here, as its teacher admins would: the tour shows the public page
        )
        for area, name in ROOMS:
            await spaces.create_room(pool, space_id=space.id, area=area, name=name)
    password_hash = hash_password(PASSWORD)
    rows = []
    for username, name, school, role in PEOPLE:
        user = await accounts.user_by_username(pool, username)
        if user is None:
            user = await accounts.create_user(
                pool, username=username, display_name=name, password_hash=password_hash, school=school,
                platform_role="moderator" if role is None else None,
            )
            if role is not None:
                await spaces.set_member(pool, space.id, user.id, role)
        rows.append((username, PASSWORD, role or "moderator (platform)", school))
    if created:
        await _first_mail(pool, space.id)
    return rows


async def _first_mail(pool: asyncpg.Pool, space_id: int) -> None:
    """A first TwinMail from the Lyon teacher to the pupils, so that no mailbox starts empty."""
    members = {p.name: (p, box) for p, _, box in await mail.roster(pool, space_id)}
    sender, box = members["Claire Martin"]
    to = tuple(members[n] for n in ("Hugo D.", "Ana L.", "Ola K.", "Jan W.", "Piotr Nowak"))
    text = (
        "Bonjour / Dzień dobry! This week, find where the water of your town comes from "
        "and tell your partners in the Pupils' corner. — Claire"
    )
    async with transaction(pool, "demo_mail") as conn:
        await mail.send_many(conn, [NewMail(space_id, sender, box, to, "Welcome to our project!", text, None, None, None)])


def logins_table(rows: list[tuple[str, str, str, str]], base_url: str) -> str:
    lines = [
        f"TwinHub demo project '{SLUG}' at {base_url}",
        f"  {'username':<15} {'password':<10} {'role':<22} school",
    ]
    lines += [f"  {u:<15} {p:<10} {r:<22} {s}" for u, p, r, s in rows]
    lines.append("  (demo passwords: for trying TwinHub only)")
    return "\n".join(lines)
