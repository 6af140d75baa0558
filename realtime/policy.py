"""The role matrix — who may do what, where — as data, and the one function that reads it.

Every right in TwinHub is decided here and nowhere else. The table is the product's contract
(docs/roles.md shows it; tests/realtime/test_policy.py and tests/e2e/test_role_matrix.py walk
it cell by cell): when a cell changes, the table, its tests and the docs change together.

Sources (seeds/000_… FAQ, seeds/001_… user guide): pupils cannot enter the teachers' room;
in the pupils' corner pupils post, teachers only read and teacher admins moderate; visitors
never start contact with a pupil; a closed project is read-only until a teacher admin reopens it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from protocol import ErrorCode


class Role(StrEnum):
    TEACHER_ADMIN = "teacher_admin"
    TEACHER_MEMBER = "teacher_member"
    PUPIL_ADMIN = "pupil_admin"
    PUPIL_MEMBER = "pupil_member"
    VISITOR = "visitor"
    MODERATOR = "moderator"  # platform staff, in every space, not a member of any
    BOT = "bot"  # a token scoped to one space and to one thing: journal entries or activity records


# Platform roles (users.platform_role) that are not roles in a project: a platform administrator
# runs projects (decide_platform) and is in none of them; a moderator is in every one (Role.MODERATOR).
PLATFORM_ADMIN = "admin"
PLATFORM_MODERATOR = "moderator"


class Area(StrEnum):
    HOME = "home"  # home page and project journal
    ACTIVITIES = "activities"  # project activity rooms
    TEACHERS_ROOM = "teachers_room"
    PUPILS_CORNER = "pupils_corner"
    CHAT = "chat"


class Action(StrEnum):
    READ = "read"
    POST = "post"
    COMMENT = "comment"
    MODERATE = "moderate"  # hide any message, mute, see reports
    CREATE_ROOM = "create_room"
    EDIT_OWN = "edit_own"  # edit one's own message: needs POST where it stands
    DELETE_OWN = "delete_own"  # erase one's own message: needs READ (one may always take back one's words)
    MANAGE_SPACE = "manage_space"  # close and reopen the project
    MANAGE_ROOMS = "manage_rooms"  # archive, unarchive and delete the project's rooms
    REVIEW_REPORTS = "review_reports"  # see what members reported (the one reported mail included)
    MUTE_MEMBERS = "mute_members"  # silence a member in the project's mail or in all of it
    READ_AUDIT = "read_audit"  # read (and export) the project's audit log
    REPORT = "report"  # report a message to the project's reviewers: needs READ where it stands
    SEE_LOGINS = "see_logins"  # members' usernames and login lockouts (to help a pupil log in)


R, P, C, M, CR = Action.READ, Action.POST, Action.COMMENT, Action.MODERATE, Action.CREATE_ROOM
TA, TM, PA, PM, V, MOD = (
    Role.TEACHER_ADMIN, Role.TEACHER_MEMBER, Role.PUPIL_ADMIN, Role.PUPIL_MEMBER, Role.VISITOR, Role.MODERATOR,
)

# area -> role -> actions. A role missing from an area's row has no right there at all.
MATRIX: dict[Area, dict[Role, frozenset[Action]]] = {
    Area.HOME: {
        TA: frozenset({R, P, C, M}), TM: frozenset({R, P, C}), PA: frozenset({R, C}), PM: frozenset({R, C}),
        V: frozenset({R, C}), MOD: frozenset({R, M}),
    },
    Area.ACTIVITIES: {
        TA: frozenset({R, P, CR, M}), TM: frozenset({R, P}), PA: frozenset({R, P, CR}), PM: frozenset({R, P}),
        V: frozenset({R, C}), MOD: frozenset({R, M}),
    },
    Area.TEACHERS_ROOM: {
        TA: frozenset({R, P, M}), TM: frozenset({R, P}), MOD: frozenset({R, M}),
    },
    Area.PUPILS_CORNER: {
        TA: frozenset({R, M}), TM: frozenset({R}), PA: frozenset({R, P}), PM: frozenset({R, P}),
        MOD: frozenset({R, M}),
    },
    Area.CHAT: {
        TA: frozenset({R, P, M}), TM: frozenset({R, P}), PA: frozenset({R, P}), PM: frozenset({R, P}),
        MOD: frozenset({R, M}),
    },
}

_AREA_VALUES = frozenset(a.value for a in Area)

AREA_NAMES = {
    Area.HOME: "home page",
    Area.ACTIVITIES: "project activities",
    Area.TEACHERS_ROOM: "teachers' room",
    Area.PUPILS_CORNER: "pupils' corner",
    Area.CHAT: "chat",
}

# Rights that are not about an area.
SPACE_RIGHTS: dict[Role, frozenset[Action]] = {
    TA: frozenset({
        Action.MANAGE_SPACE, Action.MANAGE_ROOMS, Action.REVIEW_REPORTS, Action.MUTE_MEMBERS, Action.READ_AUDIT,
        Action.SEE_LOGINS,
    }),
    TM: frozenset({Action.SEE_LOGINS}),
    MOD: frozenset({Action.REVIEW_REPORTS, Action.MUTE_MEMBERS, Action.READ_AUDIT, Action.SEE_LOGINS}),
}
_SPACE_REFUSALS = {
    Action.MANAGE_SPACE: "only the project's teacher administrators may do this",
    Action.MANAGE_ROOMS: "only the project's teacher administrators rename, archive and delete its rooms",
    Action.REVIEW_REPORTS: "only the project's teacher administrators and platform moderators see reports",
    Action.MUTE_MEMBERS: "only the project's teacher administrators and platform moderators mute in its mail",
    Action.READ_AUDIT: "only the project's teacher administrators and platform moderators read its audit log",
    Action.SEE_LOGINS: "only teachers see members' usernames and login lockouts",
}

# Mutes. A mute's scope is an area (who moderates the area may mute there), the project's mail,
# or all of the project (both: teacher admins and platform moderators). Only pupils and visitors
# are muted: teachers are the adults in charge, not moderated by one another (a choice; the
# seeds give teacher admins moderation of the pupils' corner, not of their colleagues).
MUTE_SCOPES = (*(a.value for a in Area), "mail", "all")
MUTABLE = frozenset({PA, PM, V})

# TwinMail: sender's role -> the roles they may write to, within one project. A mailbox is its
# owner's alone — there is no right to read another member's, for any role (the storage queries
# take the owner from the session, so there is no way to ask). Moderators and bots are not
# members: they have no mailbox. Sources: pupils write to pupils and teachers; visitors never
# start contact with a pupil (they do write to teachers — a parent answering a teacher).
MEMBER_ROLES = (TA, TM, PA, PM, V)
MAIL_TO: dict[Role, frozenset[Role]] = {
    TA: frozenset(MEMBER_ROLES),
    TM: frozenset(MEMBER_ROLES),
    PA: frozenset({TA, TM, PA, PM}),
    PM: frozenset({TA, TM, PA, PM}),
    V: frozenset({TA, TM}),
}
_MAIL_REFUSALS = {
    PA: "pupils may write to pupils and teachers only",
    PM: "pupils may write to pupils and teachers only",
    V: "visitors may write to teachers only",
}

# What each derived action needs in the table.
_NEEDS = {Action.EDIT_OWN: P, Action.DELETE_OWN: R, Action.REPORT: R}

# In a closed project, and in an archived room, only these still work. Moderation stays
# possible: safeguarding does not wait for the next school year (a choice; docs/roles.md says so).
_WHILE_CLOSED = frozenset({R, M})


@dataclass(frozen=True, slots=True)
class Refusal:
    code: ErrorCode
    message: str


CLOSED = Refusal(
    ErrorCode.SPACE_CLOSED, "this project is closed: it is read-only until a teacher administrator reopens it"
)
ARCHIVED = Refusal(
    ErrorCode.ROOM_ARCHIVED, "this room is archived: it is read-only until a teacher administrator unarchives it"
)


def _has(roles: Iterable[Role], area: Area, action: Action) -> bool:
    row = MATRIX[area]
    need = _NEEDS.get(action, action)
    return any(need in row.get(role, ()) for role in roles)


# How a refusal names what was asked ("your role may not create rooms in the chat").
_DOING = {Action.CREATE_ROOM: "create rooms", Action.EDIT_OWN: "edit messages", Action.DELETE_OWN: "delete messages"}


def decide(
    roles: Iterable[Role], area: Area, action: Action, *, closed: bool = False, archived: bool = False
) -> Refusal | None:
    """None when one of `roles` may do `action` in `area`; otherwise why not.

    `roles` are the caller's roles in the space *now* (a member role and/or MODERATOR); empty
    means not a member. `closed`: the project is closed; `archived`: the room is (both are
    read-only: reading, moderating and reporting still work). Pure: no I/O, no clock.
    """
    roles = tuple(roles)
    if not roles:
        return Refusal(ErrorCode.NOT_MEMBER, "you are not a member of this project")
    if action in _SPACE_REFUSALS:
        if any(action in SPACE_RIGHTS.get(r, ()) for r in roles):
            return None
        return Refusal(ErrorCode.FORBIDDEN, _SPACE_REFUSALS[action])
    if not _has(roles, area, action):
        if not _has(roles, area, R):
            return Refusal(ErrorCode.FORBIDDEN, f"your role cannot enter the {AREA_NAMES[area]}")
        doing = _DOING.get(action, action.value.replace("_", " "))
        return Refusal(ErrorCode.FORBIDDEN, f"your role may not {doing} in the {AREA_NAMES[area]}")
    writes = action is Action.DELETE_OWN or _NEEDS.get(action, action) not in _WHILE_CLOSED
    if closed and writes:
        return CLOSED
    if archived and writes:
        return ARCHIVED
    return None


# What a teacher admin may do to a room (services/projects.py): "archive" it (read-only for
# everyone), "unarchive" it, or "delete" it (gone for the members, its messages kept for the
# reports). A room may be deleted only in an area where rooms are made (someone has create_room
# there): the other areas' rooms came with the project and nobody could make one again — those
# are archived instead. The journal is neither archived nor deleted.
DELETABLE_AREAS = frozenset(area for area, row in MATRIX.items() if any(CR in acts for acts in row.values()))


def decide_room_change(
    roles: Iterable[Role], area: Area, kind: str, change: str, *, closed: bool = False
) -> Refusal | None:
    """None when one of `roles` may archive, unarchive, delete or rename (`change`) a room of
    `area` and `kind` ("room" or "journal"); otherwise why not. Teacher admins only (platform
    moderators moderate messages, they do not run projects); a closed project changes nothing.
    Any room may be renamed, the journal included: a name is not its history."""
    refusal = decide(roles, Area.HOME, Action.MANAGE_ROOMS)
    if refusal is not None:
        return refusal
    if kind == "journal" and change != "rename":
        return Refusal(ErrorCode.FORBIDDEN, "the project journal cannot be archived or deleted")
    if change == "delete" and area not in DELETABLE_AREAS:
        return Refusal(ErrorCode.FORBIDDEN, f"this room came with the project ({AREA_NAMES[area]}) and could not "
                       "be made again: archive it instead")
    if closed:
        return CLOSED
    return None


def decide_mail(sender: Role | None, recipient: Role | None, *, closed: bool = False) -> Refusal | None:
    """None when a member with role `sender` may send mail to a member with role `recipient` of
    the same project; otherwise why not. None for a role means "not a member of this project"
    (for the recipient the answer does not tell a non-member from someone who does not exist)."""
    if sender is None or sender not in MAIL_TO:
        return Refusal(ErrorCode.NOT_MEMBER, "only members of this project have a mailbox in it")
    if recipient is None or recipient not in MAIL_TO:
        return Refusal(ErrorCode.NOT_FOUND, "no such member in this project")
    if recipient not in MAIL_TO[sender]:
        if sender is V and recipient in (PA, PM):
            # A visitor is not told who is a pupil: a pupil answers like nobody in the project.
            return Refusal(ErrorCode.NOT_FOUND, "no such member in this project")
        return Refusal(ErrorCode.FORBIDDEN, _MAIL_REFUSALS.get(sender, "your role may not write to this member"))
    if closed:
        return Refusal(ErrorCode.SPACE_CLOSED, "this project is closed: its mail is read-only until it is reopened")
    return None


def decide_report(roles: Iterable[Role], area: Area, *, own: bool) -> Refusal | None:
    """Anyone who may read a message may report it — in a closed project too (safeguarding does
    not wait) — except its author."""
    refusal = decide(roles, area, Action.REPORT)
    if refusal is None and own:
        return Refusal(ErrorCode.FORBIDDEN, "you cannot report your own message; delete it instead")
    return refusal


def decide_queue(roles: Iterable[Role], *, platform: bool) -> Refusal | None:
    """Who follows a moderation queue: a project's, its reviewers (teacher admins, platform
    moderators); the platform's (every project), platform moderators alone."""
    roles = tuple(roles)
    if platform:
        return None if MOD in roles else Refusal(ErrorCode.FORBIDDEN, "only platform moderators see every project's reports")
    return decide(roles, Area.HOME, Action.REVIEW_REPORTS)


def decide_mute(actor: Iterable[Role], target: Role | None, scope: str) -> Refusal | None:
    """None when someone with roles `actor` may mute (or unmute) a member with role `target` in
    `scope`; otherwise why not. A target of None is not a member of the project."""
    actor = tuple(actor)
    if not actor:
        return Refusal(ErrorCode.NOT_MEMBER, "you are not a member of this project")
    if scope in _AREA_VALUES:
        refusal = decide(actor, Area(scope), Action.MODERATE)
    else:
        refusal = decide(actor, Area.HOME, Action.MUTE_MEMBERS)
    if refusal is not None:
        return refusal
    if target is None:
        return Refusal(ErrorCode.NOT_FOUND, "no such member in this project")
    if target not in MUTABLE:
        return Refusal(ErrorCode.FORBIDDEN, "only pupils and visitors can be muted")
    return None


def decide_mute_list(roles: Iterable[Role]) -> Refusal | None:
    """Who reads a project's current mutes (who, where, until when, by whom, why): those who may
    mute in all of it — its teacher admins and platform moderators. Other members `forbidden`."""
    roles = tuple(roles)
    if decide(roles, Area.HOME, Action.MUTE_MEMBERS) is None:
        return None
    if not roles:
        return Refusal(ErrorCode.NOT_MEMBER, "you are not a member of this project")
    return Refusal(ErrorCode.FORBIDDEN, "only the project's teacher administrators and platform moderators see its mutes")


# Who adds documents to a project (seed 000: "ajout de documents" for teacher and pupil members
# alike): its members who write in it. Visitors (parents) read and comment; platform moderators
# and bots add none.
UPLOADERS = frozenset({Role.TEACHER_ADMIN, Role.TEACHER_MEMBER, Role.PUPIL_ADMIN, Role.PUPIL_MEMBER})


def decide_upload(roles: Iterable[Role]) -> Refusal | None:
    """Adding a file to a project (it is then attached to a message, a mail or an entry, whose
    own right decides who reads it). Not a member: `not_member`; visitors and others: `forbidden`."""
    roles = tuple(roles)
    if any(r in UPLOADERS for r in roles):
        return None
    if not roles:
        return Refusal(ErrorCode.NOT_MEMBER, "you are not a member of this project")
    return Refusal(ErrorCode.FORBIDDEN, "visitors read and comment; members add the project's documents")


def sees_hidden_text(roles: Iterable[Role], area: Area) -> bool:
    """Whether someone with `roles` reads the words of a message a moderator hid in `area`: those
    who moderate the area (they hid it, they may unhide or erase it: they must read what they
    judge). Everyone else gets a hidden message without its text."""
    return decide(roles, area, Action.MODERATE) is None


def mute_in_force(mutes: dict[str, datetime] | None, scope: str, now: datetime) -> tuple[str, datetime] | None:
    """The mute that silences someone in `scope` now, as (the scope it was set with, its end):
    a mute of 'all' counts in every scope. That scope, not the one asked about, is what the
    member is told, so that `unmute` with it lifts the mute. Of two in force (the area's and
    'all'), the one that ends last. None if they are not muted there now. `mutes`: their mutes
    in one project."""
    if not mutes:
        return None
    found = [(t, s) for s in (scope, "all") if (t := mutes.get(s)) is not None and t > now]
    if not found:
        return None
    until, muted_in = max(found)
    return muted_in, until


BOT_SCOPES = ("journal", "activity")  # post journal entries | post activity records (a service)
# Whom an activity token may name as the actor of a record: the project's adults. Never a pupil
# (issue 21, rule 9: a service outside TwinHub does not put a child's name on what it records).
BOT_ACTORS = frozenset({TA, TM, V})
MAX_BOT_ACTORS = 20  # members an activity token may be made for


def decide_bot(bot_space_id: int, bot_scope: str, space_id: int, scope: str, *, closed: bool = False) -> Refusal | None:
    """A bot token does the one thing it was made for (`bot_scope`), in its own project while it
    is open (`closed`: its project is closed), and nothing else anywhere (it is not a session: no
    other route or frame accepts it). Another project's token is told nothing of that project."""
    if bot_space_id != space_id:
        return Refusal(ErrorCode.FORBIDDEN, "this bot's token is for another project")
    if bot_scope != scope:
        return Refusal(ErrorCode.FORBIDDEN, f"this token may only post {bot_scope} items")
    if closed:
        return Refusal(ErrorCode.SPACE_CLOSED, "this project is closed: its bots post nothing until a teacher "
                       "administrator reopens it")
    return None


def decide_bot_actor(role: Role | None, actor_id: int, actors: Collection[int] | None) -> Refusal | None:
    """Whether an activity token may name `actor_id` (whose role in the token's project now is
    `role`; None: not a member) as the one who did what it records: an adult member (BOT_ACTORS)
    and, if the token was made for some members (`actors`), one of them. A pupil, a bot, a former
    member, someone the token was not made for and someone who does not exist all answer the
    same `not_found`: a token does not tell who is a pupil."""
    if role not in BOT_ACTORS or (actors is not None and actor_id not in actors):
        return Refusal(ErrorCode.NOT_FOUND, "actor_id is not a member this token may name")
    return None


def decide_invite(actor: Iterable[Role], role: Role) -> Refusal | None:
    """Who adds whom (seed): teacher admins invite anyone with any role; teacher members invite
    their own pupils (as pupil members); pupils and visitors invite nobody."""
    actor = tuple(actor)
    if not actor:
        return Refusal(ErrorCode.NOT_MEMBER, "you are not a member of this project")
    if TA in actor:
        return None
    if TM in actor and role is PM:
        return None
    if TM in actor:
        return Refusal(ErrorCode.FORBIDDEN, "teacher members invite pupils only; teacher admins invite the others")
    return Refusal(ErrorCode.FORBIDDEN, "only teachers invite members")


def decide_member_change(
    actor: Iterable[Role], actor_id: int, target_id: int, target: Role | None, invited_by: int | None,
    new_role: Role | None, *, admins: int, staff: bool = False,
) -> Refusal | None:
    """Changing a member's role (`new_role`) or removing them (None). Teacher admins change and
    remove anyone; teacher members remove the pupils they invited; anyone may leave. A project
    always keeps a teacher admin (`admins`: how many it has now). Adult and pupil are kinds of
    account, not roles: a pupil's role stays a pupil's and an adult's an adult's (an account's
    kind is the kind of its role in every project: the schema holds it, storage's
    members_keep_account_kind). A platform moderator placed in the project (`staff`) stays a
    visitor there (MODERATOR_MEMBER_ROLE): they may be removed, never given another role."""
    actor = tuple(actor)
    if not actor:
        return Refusal(ErrorCode.NOT_MEMBER, "you are not a member of this project")
    if target is None:
        return Refusal(ErrorCode.NOT_FOUND, "no such member in this project")
    if new_role is not None and (new_role in (PA, PM)) != (target in (PA, PM)):
        return Refusal(ErrorCode.FORBIDDEN, "a pupil's account keeps a pupil's role and an adult's an adult's: "
                       "adult and pupil are kinds of account, not roles")
    if staff and new_role is not None and new_role is not MODERATOR_MEMBER_ROLE:
        return Refusal(ErrorCode.FORBIDDEN, "a platform moderator is a member of a project as a visitor only")
    if target is TA and new_role is not TA and admins <= 1:
        return Refusal(ErrorCode.FORBIDDEN, "a project keeps at least one teacher admin: name another one first")
    if actor_id == target_id:
        if new_role is None:
            return None  # leaving
        return Refusal(ErrorCode.FORBIDDEN, "ask another teacher admin to change your own role")
    if TA in actor:
        return None
    if TM in actor and new_role is None and target in (PA, PM) and invited_by == actor_id:
        return None
    return Refusal(ErrorCode.FORBIDDEN, "only teacher admins change roles and remove members")


def decide_readd(actor: Iterable[Role], role: Role, *, home: bool) -> Refusal | None:
    """Adding back a pupil who was removed (their mailbox and their messages were kept): whoever may
    invite a pupil with `role` (decide_invite: teacher admins any pupil's role, teacher members
    pupil members), and only in the pupil's home (`home`), the project that made the account
    (docs/roles.md, "Accounts belong somewhere"). Anywhere else the pupil answers like no one: a
    teacher of another project learns nothing of a child who is not theirs."""
    actor = tuple(actor)
    refusal = decide_invite(actor, role)
    if refusal is not None:
        return refusal
    if not home:
        return Refusal(ErrorCode.NOT_FOUND, "no former pupil of this project has that id")
    return None


def decide_password_reset(
    actor: Iterable[Role], actor_id: int, target: Role | None, invited_by: int | None, *, home: bool
) -> Refusal | None:
    """Teachers reset pupils' passwords (pupils never change their own, seed): teacher admins any
    pupil of the project, teacher members the pupils they invited — and only in the pupil's home,
    the project that made the account (`home`): a password is the account's, for every project
    it is in, so a teacher of another project the pupil joined never holds it (docs/roles.md)."""
    actor = tuple(actor)
    if not actor:
        return Refusal(ErrorCode.NOT_MEMBER, "you are not a member of this project")
    if target is None:
        return Refusal(ErrorCode.NOT_FOUND, "no such member in this project")
    if target not in (PA, PM):
        return Refusal(ErrorCode.FORBIDDEN, "teachers reset pupils' passwords only")
    if not home:
        return Refusal(ErrorCode.FORBIDDEN, "only the teachers of the project that made this pupil's account reset it")
    if TA in actor or (TM in actor and invited_by == actor_id):
        return None
    if TM in actor:
        return Refusal(ErrorCode.FORBIDDEN, "teacher members reset the passwords of the pupils they invited")
    return Refusal(ErrorCode.FORBIDDEN, "only teachers reset pupils' passwords")


def decide_unlock(
    actor: Iterable[Role], actor_id: int, target: Role | None, invited_by: int | None, *, home: bool
) -> Refusal | None:
    """Lifting a pupil's login lockout before its 5 minutes are over (a pupil mistyped their
    password during a lesson): whoever may reset that pupil's password (decide_password_reset:
    the same rule, refused with the same codes) — and a new password lifts it too. An adult's
    lock runs its course: nobody but its owner holds an adult's password."""
    refusal = decide_password_reset(actor, actor_id, target, invited_by, home=home)
    if refusal is None or refusal.code is not ErrorCode.FORBIDDEN:
        return refusal
    actor = tuple(actor)
    if target not in (PA, PM):
        return Refusal(ErrorCode.FORBIDDEN, "teachers unlock pupils' logins only")
    if not home:
        return Refusal(ErrorCode.FORBIDDEN, "only the teachers of the project that made this pupil's account unlock it")
    if TM in actor:
        return Refusal(ErrorCode.FORBIDDEN, "teacher members unlock the logins of the pupils they invited")
    return Refusal(ErrorCode.FORBIDDEN, "only teachers unlock pupils' logins")


# What the member list offers a viewer to do to each member (`may`): the routes these decide.
MEMBER_ACTIONS = ("set_role", "remove", "reset_password", "unlock")
_SAME_KIND = {TA: (TA, TM, V), TM: (TA, TM, V), V: (TA, TM, V), PA: (PA, PM), PM: (PA, PM)}


def member_actions(
    actor: Iterable[Role], actor_id: int, target_id: int, target: Role, invited_by: int | None, *,
    admins: int, staff: bool, home: bool,
) -> list[str]:
    """What someone with roles `actor` may do to the member `target_id` (role `target`) from the
    member list, as the routes decide it: `set_role` (to some other role: decide_member_change),
    `remove` (decide_member_change), `reset_password` (decide_password_reset), `unlock`
    (decide_unlock). Nothing on oneself: leaving and one's own account have routes of their own.
    The page shows these buttons only; the routes refuse the others all the same."""
    actor = tuple(actor)
    if actor_id == target_id:
        return []
    may = []
    if any(decide_member_change(actor, actor_id, target_id, target, invited_by, r, admins=admins, staff=staff) is None
           for r in _SAME_KIND.get(target, ()) if r is not target):
        may.append("set_role")
    if decide_member_change(actor, actor_id, target_id, target, invited_by, None, admins=admins, staff=staff) is None:
        may.append("remove")
    if decide_password_reset(actor, actor_id, target, invited_by, home=home) is None:
        may.append("reset_password")
    if decide_unlock(actor, actor_id, target, invited_by, home=home) is None:
        may.append("unlock")
    return may


# What platform staff may do to projects as a whole — never inside one: a platform administrator
# creates projects (with their first teacher admin), lists, renames, closes and reopens them
# (every open one at once, at the start of a school year: seed 000_…), and places a platform
# moderator in one. Moderators keep moderation (the matrix's MODERATOR column) and nothing of this.
class PlatformAction(StrEnum):
    RUN_PROJECTS = "run_projects"  # create, list, rename, close, reopen (one or all)
    PLACE_MODERATORS = "place_moderators"  # make a platform moderator a member of a project


PLATFORM_RIGHTS: dict[str, frozenset[PlatformAction]] = {
    PLATFORM_ADMIN: frozenset(PlatformAction),
}
_PLATFORM_REFUSALS = {
    PlatformAction.RUN_PROJECTS: "only platform administrators create, list, rename and close every project",
    PlatformAction.PLACE_MODERATORS: "only platform administrators place a platform moderator in a project",
}
# A moderator placed in a project is a visitor there (chosen here): it gives them a mailbox to work
# with the project's teachers — visitors write to teachers only, and no pupil writes to them — and
# nothing that reaches a pupil privately; what they moderate they moderate as staff, everywhere.
MODERATOR_MEMBER_ROLE = V


def decide_platform(platform_role: str | None, action: PlatformAction) -> Refusal | None:
    """None when an account with `platform_role` (users.platform_role; None for everyone else)
    may do `action` to the platform's projects; otherwise `forbidden` saying who may."""
    if action in PLATFORM_RIGHTS.get(platform_role or "", ()):
        return None
    return Refusal(ErrorCode.FORBIDDEN, _PLATFORM_REFUSALS[action])


def decide_close(roles: Iterable[Role], platform_role: str | None) -> Refusal | None:
    """Closing or reopening one project: its teacher admins (MANAGE_SPACE), and platform
    administrators for every project (they are in none). A moderator does not run projects."""
    if decide_platform(platform_role, PlatformAction.RUN_PROJECTS) is None:
        return None
    return decide(roles, Area.HOME, Action.MANAGE_SPACE)


def named_in_public(role: Role | None, is_bot: bool) -> bool:
    """Whether the public view (no login) may show an author's name: teachers' and bots' yes;
    pupils appear only as "a pupil of <school>", and everyone else without a name (seed: a
    pupil's profile never leaves the project)."""
    return is_bot or role in (TA, TM)


_BADGES = {TA: "teacher", TM: "teacher", PA: "pupil", PM: "pupil", V: "visitor", Role.MODERATOR: "moderator",
           Role.BOT: "bot"}


def badge(roles: Iterable[Role]) -> str | None:
    """What a person shows next to their name in a project, so that a pupil can tell a teacher
    from a visitor or from another pupil choosing a teacher's name: `teacher`, `pupil`,
    `visitor`, `moderator` or `bot` (None: not in the project). A moderator's staff role wins."""
    found = [_BADGES[r] for r in roles if r in _BADGES]
    return "moderator" if "moderator" in found else (found[0] if found else None)


def sees_pupils(roles: Iterable[Role]) -> bool:
    """Whether someone with `roles` in a project may learn who its pupils are where rooms show who
    is there (presence, typing): everyone but a visitor — a parent is not told which children
    are in the project, nor their names (issue 21, rule 10)."""
    roles = tuple(roles)
    return bool(roles) and roles != (V,)


def readable_areas(roles: Iterable[Role]) -> frozenset[str]:
    """The areas one of `roles` may read: what their activity feed shows (docs/roles.md)."""
    roles = tuple(roles)
    return frozenset(area.value for area in Area if _has(roles, area, R))


def rights(role: Role, area: Area) -> frozenset[Action]:
    """The table's cell (for docs and the welcome frame)."""
    return MATRIX[area].get(role, frozenset())


# -- one's own account, a pupil's data, profiles (docs/roles.md, "Own accounts and profiles") ------

_OWN_ACCOUNT_REFUSALS = {
    "password": "pupils do not change their own password: their teachers reset it",
    "delete": "a pupil's account is erased by the teacher admins of the project that made it: ask your teacher",
}


def decide_own_account(kind: str, change: str) -> Refusal | None:
    """Whether an account of `kind` ('adult' or 'pupil') may do `change` to itself: 'password'
    (change it, knowing the current one), 'delete' (erase the account) or 'export' (download its
    data). Everyone exports their own data — a pupil's export is the one that holds their mail,
    which nobody else may read; pupils never change their own password (seed: teachers reset it)
    nor delete their own account (the school, through their home project's teacher admins, does)."""
    if kind == "pupil" and change in _OWN_ACCOUNT_REFUSALS:
        return Refusal(ErrorCode.FORBIDDEN, _OWN_ACCOUNT_REFUSALS[change])
    return None


def decide_pupil_data(actor: Iterable[Role], target: Role | None, kind: str | None, *, home: bool) -> Refusal | None:
    """Who exports or erases a pupil's data (access and erasure, asked of the school): the teacher
    admins of the pupil's home project, the one that made the account (`home`) — a pupil removed
    from it since included — and nobody else. `target`: the account's role in this project (None:
    not a member); `kind`: the account's ('adult', 'pupil'; None: there is no such account).
    Someone the actor may not know of answers not_found: an account outside the project, and any
    pupil asked about by a visitor (a visitor is not told who the pupils are)."""
    actor = tuple(actor)
    if not actor:
        return Refusal(ErrorCode.NOT_MEMBER, "you are not a member of this project")
    if kind is None or (target is None and not (kind == "pupil" and home)):
        return Refusal(ErrorCode.NOT_FOUND, "no such member in this project")
    if kind == "pupil" and not sees_pupils(actor):
        return Refusal(ErrorCode.NOT_FOUND, "no such member in this project")
    if kind != "pupil":
        return Refusal(ErrorCode.FORBIDDEN, "adults export and delete their own accounts; teacher admins export "
                       "and erase pupils' data")
    if not home:
        return Refusal(ErrorCode.FORBIDDEN, "only the teacher admins of the project that made this pupil's account "
                       "export or erase its data")
    if TA in actor:
        return None
    return Refusal(ErrorCode.FORBIDDEN, "only the project's teacher admins export or erase a pupil's data")


# Whose profile each role may read in a project (seed: "teachers and pupils browse the profiles
# of their partners and classmates"): teachers and platform moderators everyone's; pupils their
# teachers' and the other pupils'; visitors the adults' — never a pupil's, like the member list
# (docs/roles.md, "What a visitor is told about pupils"). **Chosen here:** pupils do not read
# visitors' profiles, so that a stranger's "about me" is no way to reach a child.
PROFILES_SEEN: dict[Role, frozenset[Role]] = {
    TA: frozenset(MEMBER_ROLES), TM: frozenset(MEMBER_ROLES), MOD: frozenset(MEMBER_ROLES),
    PA: frozenset({TA, TM, PA, PM}), PM: frozenset({TA, TM, PA, PM}),
    V: frozenset({TA, TM, V}),
}


def decide_profile(viewer: Iterable[Role], target: Role | None, *, own: bool = False) -> Refusal | None:
    """None when someone with roles `viewer` in a project may read the profile of its member
    whose role is `target` (None: not a member); `own`: it is their own. A pupil's profile asked
    for by someone who may not know who the pupils are answers like no member at all."""
    viewer = tuple(viewer)
    if not viewer:
        return Refusal(ErrorCode.NOT_MEMBER, "you are not a member of this project")
    if own:
        return None
    if target is None:
        return Refusal(ErrorCode.NOT_FOUND, "no such member in this project")
    if any(target in PROFILES_SEEN.get(role, ()) for role in viewer):
        return None
    if target in (PA, PM):
        return Refusal(ErrorCode.NOT_FOUND, "no such member in this project")
    return Refusal(ErrorCode.FORBIDDEN, "pupils read the profiles of the project's teachers and pupils")


def decide_profile_clear(actor: Iterable[Role], target: Role | None, *, home: bool) -> Refusal | None:
    """Who empties a member's profile (moderation; audited): a pupil's, the teacher admins of the
    pupil's home project (`home`: this project made the account) — the school answers for its
    pupils' accounts; an adult's, platform moderators (an adult's profile shows in every project
    they are in: one project's teachers do not decide it for the others)."""
    actor = tuple(actor)
    if not actor:
        return Refusal(ErrorCode.NOT_MEMBER, "you are not a member of this project")
    if target is None:
        return Refusal(ErrorCode.NOT_FOUND, "no such member in this project")
    if target in (PA, PM):
        if not sees_pupils(actor):
            return Refusal(ErrorCode.NOT_FOUND, "no such member in this project")
        if TA in actor and home:
            return None
        return Refusal(ErrorCode.FORBIDDEN, "a pupil's profile is moderated by the teacher admins of the project "
                       "that made the pupil's account")
    if MOD in actor:
        return None
    return Refusal(ErrorCode.FORBIDDEN, "an adult's profile is cleared by platform moderators")
