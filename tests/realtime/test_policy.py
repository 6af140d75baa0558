"""The policy table against an independent copy of DESIGN.md's role matrix, cell by cell."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from protocol import ErrorCode
from realtime.policy import (
    MATRIX,
    Action,
    Area,
    PlatformAction,
    Role,
    decide,
    decide_bot,
    decide_bot_actor,
    decide_close,
    decide_invite,
    decide_mail,
    decide_member_change,
    decide_mute,
    decide_mute_list,
    decide_own_account,
    decide_password_reset,
    decide_platform,
    decide_profile,
    decide_profile_clear,
    decide_pupil_data,
    decide_queue,
    decide_readd,
    decide_report,
    decide_room_change,
    decide_unlock,
    member_actions,
    mute_in_force,
    sees_hidden_text,
)

# Transcribed from ../shared/DESIGN.md ("The role matrix"), not from realtime/policy.py, so that a
# slip in the table fails here. Moderators (platform staff) read and moderate every room area.
R, P, C, M, CR = "read", "post", "comment", "moderate", "create_room"
DESIGN = {
    "home": {"teacher_admin": {R, P, C, M}, "teacher_member": {R, P, C}, "pupil_admin": {R, C},
             "pupil_member": {R, C}, "visitor": {R, C}, "moderator": {R, M}},
    "activities": {"teacher_admin": {R, P, CR, M}, "teacher_member": {R, P}, "pupil_admin": {R, P, CR},
                   "pupil_member": {R, P}, "visitor": {R, C}, "moderator": {R, M}},
    "teachers_room": {"teacher_admin": {R, P, M}, "teacher_member": {R, P}, "pupil_admin": set(),
                      "pupil_member": set(), "visitor": set(), "moderator": {R, M}},
    "pupils_corner": {"teacher_admin": {R, M}, "teacher_member": {R}, "pupil_admin": {R, P},
                      "pupil_member": {R, P}, "visitor": set(), "moderator": {R, M}},
    "chat": {"teacher_admin": {R, P, M}, "teacher_member": {R, P}, "pupil_admin": {R, P},
             "pupil_member": {R, P}, "visitor": set(), "moderator": {R, M}},
}
BASIC = [Action.READ, Action.POST, Action.COMMENT, Action.MODERATE, Action.CREATE_ROOM]
ROLES = [r for r in Role if r is not Role.BOT]


@pytest.mark.parametrize("area", list(Area))
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("action", BASIC)
def test_each_cell_matches_design(area, role, action):
    expected = action.value in DESIGN[area.value][role.value]
    assert (decide([role], area, action) is None) is expected


def test_table_has_no_extra_rows():
    assert {a.value for a in MATRIX} == set(DESIGN)
    for area, row in MATRIX.items():
        assert {r.value for r in row} <= set(DESIGN[area.value])


def test_teacher_admin_never_posts_in_pupils_corner():
    refusal = decide([Role.TEACHER_ADMIN], Area.PUPILS_CORNER, Action.POST)
    assert refusal is not None and refusal.code is ErrorCode.FORBIDDEN


def test_no_role_means_not_member():
    refusal = decide([], Area.CHAT, Action.READ)
    assert refusal is not None and refusal.code is ErrorCode.NOT_MEMBER


def test_bots_have_no_room_rights():
    for area in Area:
        for action in BASIC:
            assert decide([Role.BOT], area, action) is not None


@pytest.mark.parametrize("action", [Action.POST, Action.EDIT_OWN, Action.DELETE_OWN, Action.CREATE_ROOM])
def test_closed_project_refuses_writes(action):
    refusal = decide([Role.TEACHER_ADMIN, Role.PUPIL_ADMIN], Area.ACTIVITIES, action, closed=True)
    assert refusal is not None and refusal.code is ErrorCode.SPACE_CLOSED


def test_closed_project_still_reads_and_moderates():
    assert decide([Role.PUPIL_MEMBER], Area.CHAT, Action.READ, closed=True) is None
    assert decide([Role.TEACHER_ADMIN], Area.PUPILS_CORNER, Action.MODERATE, closed=True) is None


def test_edit_own_needs_post_and_delete_own_needs_read():
    assert decide([Role.TEACHER_MEMBER], Area.PUPILS_CORNER, Action.EDIT_OWN) is not None
    assert decide([Role.TEACHER_MEMBER], Area.PUPILS_CORNER, Action.DELETE_OWN) is None
    assert decide([Role.PUPIL_MEMBER], Area.TEACHERS_ROOM, Action.DELETE_OWN) is not None


def test_only_teacher_admins_manage_the_project():
    for role in ROLES:
        allowed = decide([role], Area.HOME, Action.MANAGE_SPACE) is None
        assert allowed is (role is Role.TEACHER_ADMIN)


@pytest.mark.parametrize("action", [Action.POST, Action.EDIT_OWN, Action.DELETE_OWN, Action.COMMENT])
def test_an_archived_room_refuses_writes(action):
    area = Area.HOME if action is Action.COMMENT else Area.ACTIVITIES
    refusal = decide([Role.TEACHER_ADMIN, Role.PUPIL_ADMIN], area, action, archived=True)
    assert refusal is not None and refusal.code is ErrorCode.ROOM_ARCHIVED


def test_an_archived_room_is_still_read_reported_and_moderated_and_a_closed_project_says_so_first():
    for action in (Action.READ, Action.REPORT, Action.MODERATE):
        assert decide([Role.TEACHER_ADMIN], Area.ACTIVITIES, action, archived=True) is None
    assert decide([Role.PUPIL_MEMBER], Area.TEACHERS_ROOM, Action.POST, archived=True).code is ErrorCode.FORBIDDEN
    both = decide([Role.PUPIL_MEMBER], Area.CHAT, Action.POST, closed=True, archived=True)
    assert both is not None and both.code is ErrorCode.SPACE_CLOSED


@pytest.mark.parametrize("change", ["archive", "unarchive", "delete"])
def test_only_teacher_admins_change_rooms(change):
    """Teacher admins of the project (docs/roles.md): not the pupil admin who made the room, not
    platform moderators (they moderate messages, they do not run projects)."""
    for role in ROLES:
        refusal = decide_room_change([role], Area.ACTIVITIES, "room", change)
        assert (refusal is None) is (role is Role.TEACHER_ADMIN), role
        if refusal is not None:
            assert refusal.code is ErrorCode.FORBIDDEN
    assert decide_room_change([Role.PUPIL_MEMBER, Role.MODERATOR], Area.ACTIVITIES, "room", change) is not None
    assert decide_room_change([], Area.ACTIVITIES, "room", change).code is ErrorCode.NOT_MEMBER
    refusal = decide_room_change([Role.TEACHER_ADMIN], Area.HOME, "journal", change)
    assert refusal is not None and refusal.code is ErrorCode.FORBIDDEN and "journal" in refusal.message
    closed = decide_room_change([Role.TEACHER_ADMIN], Area.ACTIVITIES, "room", change, closed=True)
    assert closed is not None and closed.code is ErrorCode.SPACE_CLOSED


@pytest.mark.parametrize("area", list(Area))
def test_rooms_are_deleted_only_where_rooms_are_made_and_archived_anywhere(area):
    """A room of an area where nobody may create rooms came with the project: deleting it could
    not be undone by making another, so it is archived instead."""
    made_there = any(CR in DESIGN[area.value][role] for role in DESIGN[area.value])
    deleted = decide_room_change([Role.TEACHER_ADMIN], area, "room", "delete")
    assert (deleted is None) is made_there
    assert decide_room_change([Role.TEACHER_ADMIN], area, "room", "archive") is None


def test_moderator_who_is_also_a_member_has_both_rights():
    roles = [Role.PUPIL_MEMBER, Role.MODERATOR]
    assert decide(roles, Area.TEACHERS_ROOM, Action.MODERATE) is None
    assert decide(roles, Area.CHAT, Action.POST) is None


def test_refusal_messages_name_the_area():
    refusal = decide([Role.PUPIL_MEMBER], Area.TEACHERS_ROOM, Action.READ)
    assert refusal is not None and "teachers' room" in refusal.message


# Who may write to whom in TwinMail, transcribed from the TwinMail issue and DESIGN.md (not from
# realtime/policy.py): teachers write to anyone in the project; pupils to pupils and teachers;
# visitors never write to pupils (they answer teachers).
TEACHERS = {"teacher_admin", "teacher_member"}
PUPILS = {"pupil_admin", "pupil_member"}
MEMBERS = TEACHERS | PUPILS | {"visitor"}
MAIL = {
    "teacher_admin": MEMBERS, "teacher_member": MEMBERS,
    "pupil_admin": TEACHERS | PUPILS, "pupil_member": TEACHERS | PUPILS,
    "visitor": TEACHERS,
}


@pytest.mark.parametrize("sender", sorted(MEMBERS))
@pytest.mark.parametrize("recipient", sorted(MEMBERS))
def test_mail_cell_matches_design(sender, recipient):
    refusal = decide_mail(Role(sender), Role(recipient))
    if recipient in MAIL[sender]:
        assert refusal is None
    elif sender == "visitor" and recipient in PUPILS:  # a visitor is not told who is a pupil
        assert refusal is not None and refusal.code is ErrorCode.NOT_FOUND
    else:
        assert refusal is not None and refusal.code is ErrorCode.FORBIDDEN


@pytest.mark.parametrize("outside", [None, Role.MODERATOR, Role.BOT])
def test_mail_needs_both_ends_to_be_members(outside):
    refusal = decide_mail(outside, Role.TEACHER_ADMIN)
    assert refusal is not None and refusal.code is ErrorCode.NOT_MEMBER
    refusal = decide_mail(Role.TEACHER_ADMIN, outside)
    assert refusal is not None and refusal.code is ErrorCode.NOT_FOUND


def test_closed_project_mail_is_read_only():
    refusal = decide_mail(Role.TEACHER_ADMIN, Role.PUPIL_MEMBER, closed=True)
    assert refusal is not None and refusal.code is ErrorCode.SPACE_CLOSED


def test_reports_are_for_teacher_admins_and_moderators():
    for role in ROLES:
        allowed = decide([role], Area.HOME, Action.REVIEW_REPORTS) is None
        assert allowed is (role in (Role.TEACHER_ADMIN, Role.MODERATOR))


@pytest.mark.parametrize("area", list(Area))
@pytest.mark.parametrize("role", ROLES)
def test_whoever_reads_a_message_may_report_it_but_not_their_own(role, area):
    reads = R in DESIGN[area.value].get(role.value, set())
    assert (decide_report([role], area, own=False) is None) is reads
    own = decide_report([role], area, own=True)
    assert own is not None and own.code is ErrorCode.FORBIDDEN


def test_who_follows_the_moderation_queues():
    for role in ROLES:
        assert (decide_queue([role], platform=False) is None) is (role in (Role.TEACHER_ADMIN, Role.MODERATOR))
        assert (decide_queue([role], platform=True) is None) is (role is Role.MODERATOR)
    assert decide_queue([], platform=False).code is ErrorCode.NOT_MEMBER


# Mutes: who moderates an area mutes there; the project's mail and all of it are for teacher
# admins and platform moderators; only pupils and visitors are muted.
@pytest.mark.parametrize("actor", ROLES)
@pytest.mark.parametrize("scope", [*(a.value for a in Area), "mail", "all"])
def test_who_may_mute_where(actor, scope):
    if scope in ("mail", "all"):
        may = actor in (Role.TEACHER_ADMIN, Role.MODERATOR)
    else:
        may = M in DESIGN[scope][actor.value]
    refusal = decide_mute([actor], Role.PUPIL_MEMBER, scope)
    assert (refusal is None) is may, refusal


@pytest.mark.parametrize("target", [Role.TEACHER_ADMIN, Role.TEACHER_MEMBER])
def test_teachers_are_not_muted(target):
    refusal = decide_mute([Role.TEACHER_ADMIN], target, "chat")
    assert refusal is not None and refusal.code is ErrorCode.FORBIDDEN
    assert decide_mute([Role.MODERATOR], None, "all").code is ErrorCode.NOT_FOUND


def test_a_projects_mutes_are_read_by_those_who_mute_in_all_of_it():
    for role in ROLES:
        refusal = decide_mute_list([role])
        assert (refusal is None) is (role in (Role.TEACHER_ADMIN, Role.MODERATOR)), role
        assert refusal is None or refusal.code is ErrorCode.FORBIDDEN
    assert decide_mute_list([]).code is ErrorCode.NOT_MEMBER


@pytest.mark.parametrize("area", list(Area))
def test_a_hidden_messages_words_are_read_by_those_who_moderate_its_area(area):
    for role in ROLES:
        assert sees_hidden_text([role], area) is (M in DESIGN[area.value].get(role.value, ())), (role, area)
    assert sees_hidden_text([], area) is False


def test_a_mute_ends_by_itself_and_all_covers_every_scope():
    now = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    later, earlier, latest = now + timedelta(hours=1), now - timedelta(seconds=1), now + timedelta(hours=2)
    assert mute_in_force({"chat": later}, "chat", now) == ("chat", later)
    assert mute_in_force({"chat": later}, "mail", now) is None
    assert mute_in_force({"all": later}, "mail", now) == ("all", later)  # named as it was set: unmute 'all'
    assert mute_in_force({"chat": earlier}, "chat", now) is None  # over
    assert mute_in_force({"chat": later, "all": latest}, "chat", now) == ("all", latest)
    assert mute_in_force({"chat": latest, "all": later}, "chat", now) == ("chat", latest)
    assert mute_in_force(None, "chat", now) is None


def test_who_invites_whom():
    assert decide_invite([Role.TEACHER_ADMIN], Role.TEACHER_MEMBER) is None
    assert decide_invite([Role.TEACHER_MEMBER], Role.PUPIL_MEMBER) is None
    for actor, role in ((Role.TEACHER_MEMBER, Role.VISITOR), (Role.TEACHER_MEMBER, Role.PUPIL_ADMIN),
                        (Role.PUPIL_ADMIN, Role.PUPIL_MEMBER), (Role.VISITOR, Role.PUPIL_MEMBER)):
        assert decide_invite([actor], role).code is ErrorCode.FORBIDDEN
    assert decide_invite([], Role.PUPIL_MEMBER).code is ErrorCode.NOT_MEMBER


def test_who_resets_whose_password():
    assert decide_password_reset([Role.TEACHER_ADMIN], 1, Role.PUPIL_MEMBER, invited_by=2, home=True) is None
    assert decide_password_reset([Role.TEACHER_MEMBER], 1, Role.PUPIL_ADMIN, invited_by=1, home=True) is None
    assert decide_password_reset([Role.TEACHER_MEMBER], 1, Role.PUPIL_MEMBER, invited_by=2, home=True).code is ErrorCode.FORBIDDEN
    assert decide_password_reset([Role.TEACHER_ADMIN], 1, Role.TEACHER_MEMBER, invited_by=1, home=True).code is ErrorCode.FORBIDDEN
    assert decide_password_reset([Role.PUPIL_MEMBER], 1, Role.PUPIL_MEMBER, invited_by=None, home=True).code is ErrorCode.FORBIDDEN
    assert decide_password_reset([Role.TEACHER_ADMIN], 1, None, invited_by=None, home=True).code is ErrorCode.NOT_FOUND
    # a pupil whose account another project made: this project's teachers never hold its password
    assert decide_password_reset([Role.TEACHER_ADMIN], 1, Role.PUPIL_MEMBER, invited_by=1, home=False).code is ErrorCode.FORBIDDEN
    assert decide_password_reset([Role.TEACHER_MEMBER], 1, Role.PUPIL_MEMBER, invited_by=1, home=False).code is ErrorCode.FORBIDDEN


def test_who_unlocks_whose_login_is_who_resets_their_password():
    TA_, TM_, PA_, PM_, V_ = Role.TEACHER_ADMIN, Role.TEACHER_MEMBER, Role.PUPIL_ADMIN, Role.PUPIL_MEMBER, Role.VISITOR
    for actor, target, invited_by, home in (
        ([TA_], PM_, 2, True), ([TM_], PA_, 1, True), ([TM_], PM_, 2, True), ([TA_], TM_, 1, True), ([PM_], PM_, None, True),
        ([V_], PM_, None, True), ([TA_], None, None, True), ([TA_], PM_, 1, False), ([TM_], PM_, 1, False), ([], PM_, 1, True),
    ):
        reset = decide_password_reset(actor, 1, target, invited_by, home=home)
        unlock = decide_unlock(actor, 1, target, invited_by, home=home)
        assert (reset is None) == (unlock is None) and (reset is None or reset.code is unlock.code), (actor, target)
    assert "unlock" in decide_unlock([TM_], 1, PM_, 2, home=True).message


def test_the_member_list_offers_what_the_routes_allow():
    TA_, TM_, PM_, V_ = Role.TEACHER_ADMIN, Role.TEACHER_MEMBER, Role.PUPIL_MEMBER, Role.VISITOR
    every = ["set_role", "remove", "reset_password", "unlock"]
    assert member_actions([TA_], 1, 5, PM_, None, admins=1, staff=False, home=True) == every
    assert member_actions([TA_], 1, 5, PM_, None, admins=1, staff=False, home=False) == ["set_role", "remove"]
    assert member_actions([TA_], 1, 2, TM_, None, admins=1, staff=False, home=False) == ["set_role", "remove"]
    assert member_actions([TA_], 1, 2, V_, None, admins=1, staff=True, home=False) == ["remove"]  # a placed moderator
    assert member_actions([TA_], 1, 1, TA_, None, admins=2, staff=False, home=False) == []  # oneself
    # A teacher member: the pupils they invited (remove, new password, unlock), nobody's role.
    assert member_actions([TM_], 1, 5, PM_, 1, admins=1, staff=False, home=True) == ["remove", "reset_password", "unlock"]
    assert member_actions([TM_], 1, 5, PM_, 2, admins=1, staff=False, home=True) == []
    assert member_actions([TM_], 1, 2, TA_, None, admins=1, staff=False, home=False) == []
    assert member_actions([PM_], 5, 6, PM_, None, admins=1, staff=False, home=True) == []


def test_who_changes_or_removes_whom():
    TA_, TM_, PM_ = Role.TEACHER_ADMIN, Role.TEACHER_MEMBER, Role.PUPIL_MEMBER
    assert decide_member_change([TA_], 1, 2, TM_, None, None, admins=1) is None  # remove a teacher
    assert decide_member_change([TA_], 1, 2, PM_, None, Role.PUPIL_ADMIN, admins=1) is None  # promote
    assert decide_member_change([TM_], 1, 2, PM_, 1, None, admins=1) is None  # their own pupil
    assert decide_member_change([TM_], 1, 2, PM_, 3, None, admins=1).code is ErrorCode.FORBIDDEN
    assert decide_member_change([TM_], 1, 2, PM_, 1, Role.PUPIL_ADMIN, admins=1).code is ErrorCode.FORBIDDEN
    assert decide_member_change([PM_], 2, 2, PM_, None, None, admins=1) is None  # leaving
    assert decide_member_change([TA_], 1, 1, TA_, None, None, admins=1).code is ErrorCode.FORBIDDEN  # last admin
    assert decide_member_change([TA_], 1, 1, TA_, None, None, admins=2) is None
    assert decide_member_change([TA_], 1, 5, None, None, None, admins=1).code is ErrorCode.NOT_FOUND
    # adult and pupil are kinds of account, not roles: no change turns one into the other
    for target, new in ((PM_, TM_), (PM_, Role.VISITOR), (PM_, TA_), (TM_, PM_), (Role.VISITOR, Role.PUPIL_ADMIN)):
        assert decide_member_change([TA_], 1, 2, target, None, new, admins=2).code is ErrorCode.FORBIDDEN


def test_a_bot_token_does_its_one_thing_in_its_own_open_project():
    assert decide_bot(1, "journal", 1, "journal") is None
    assert decide_bot(1, "activity", 1, "activity") is None
    assert decide_bot(1, "journal", 2, "journal").code is ErrorCode.FORBIDDEN
    assert decide_bot(1, "journal", 1, "activity").code is ErrorCode.FORBIDDEN
    assert decide_bot(1, "journal", 1, "journal", closed=True).code is ErrorCode.SPACE_CLOSED
    # another project's token learns nothing of this one, closed or not
    assert decide_bot(1, "journal", 2, "journal", closed=True).code is ErrorCode.FORBIDDEN


def test_an_activity_token_names_adult_members_only_and_a_pupil_like_nobody():
    for role in (Role.TEACHER_ADMIN, Role.TEACHER_MEMBER, Role.VISITOR):
        assert decide_bot_actor(role, 7, None) is None
    nobody = decide_bot_actor(None, 7, None)
    assert nobody.code is ErrorCode.NOT_FOUND
    for role in (Role.PUPIL_ADMIN, Role.PUPIL_MEMBER, Role.MODERATOR, Role.BOT):
        assert decide_bot_actor(role, 7, None) == nobody
    # made for some members: only them, and still never a pupil
    assert decide_bot_actor(Role.TEACHER_MEMBER, 7, (7, 8)) is None
    assert decide_bot_actor(Role.TEACHER_MEMBER, 9, (7, 8)) == nobody
    assert decide_bot_actor(Role.PUPIL_MEMBER, 7, (7,)) == nobody


ROLE_NAMES = ("teacher_admin", "teacher_member", "pupil_admin", "pupil_member", "visitor")
# Whose profile each role reads in a project, transcribed from docs/roles.md ("Profiles"), not
# from the policy: teachers and moderators everyone's; pupils the teachers' and the pupils';
# visitors the adults'.
PROFILES = {
    "teacher_admin": set(ROLE_NAMES), "teacher_member": set(ROLE_NAMES), "moderator": set(ROLE_NAMES),
    "pupil_admin": {"teacher_admin", "teacher_member", "pupil_admin", "pupil_member"},
    "pupil_member": {"teacher_admin", "teacher_member", "pupil_admin", "pupil_member"},
    "visitor": {"teacher_admin", "teacher_member", "visitor"},
}


@pytest.mark.parametrize("viewer", sorted(PROFILES))
@pytest.mark.parametrize("target", ROLE_NAMES)
def test_whose_profile_each_role_reads(viewer, target):
    refusal = decide_profile([Role(viewer)], Role(target))
    if target in PROFILES[viewer]:
        assert refusal is None
    elif target.startswith("pupil"):  # a visitor is not told who the pupils are
        assert refusal.code is ErrorCode.NOT_FOUND and refusal == decide_profile([Role(viewer)], None)
    else:
        assert refusal.code is ErrorCode.FORBIDDEN


def test_a_profile_outside_ones_projects_is_not_found_and_ones_own_is_always_read():
    assert decide_profile([], Role.PUPIL_MEMBER).code is ErrorCode.NOT_MEMBER
    assert decide_profile([Role.VISITOR], None).code is ErrorCode.NOT_FOUND
    assert decide_profile([Role.VISITOR], Role.VISITOR, own=True) is None
    assert decide_profile([Role.PUPIL_MEMBER], Role.PUPIL_MEMBER, own=True) is None


def test_who_clears_a_profile():
    TA_, TM_, V_, MOD_ = Role.TEACHER_ADMIN, Role.TEACHER_MEMBER, Role.VISITOR, Role.MODERATOR
    assert decide_profile_clear([TA_], Role.PUPIL_MEMBER, home=True) is None
    assert decide_profile_clear([TA_], Role.PUPIL_MEMBER, home=False).code is ErrorCode.FORBIDDEN
    assert decide_profile_clear([TM_], Role.PUPIL_MEMBER, home=True).code is ErrorCode.FORBIDDEN
    assert decide_profile_clear([MOD_], Role.PUPIL_MEMBER, home=True).code is ErrorCode.FORBIDDEN
    assert decide_profile_clear([V_], Role.PUPIL_ADMIN, home=True).code is ErrorCode.NOT_FOUND
    assert decide_profile_clear([MOD_], V_, home=False) is None  # an adult's: platform moderators
    assert decide_profile_clear([TA_], TM_, home=False).code is ErrorCode.FORBIDDEN
    assert decide_profile_clear([TA_], None, home=False).code is ErrorCode.NOT_FOUND
    assert decide_profile_clear([], Role.PUPIL_MEMBER, home=True).code is ErrorCode.NOT_MEMBER


def test_who_exports_or_erases_a_pupils_data():
    TA_, PM_ = Role.TEACHER_ADMIN, Role.PUPIL_MEMBER
    assert decide_pupil_data([TA_], PM_, "pupil", home=True) is None
    assert decide_pupil_data([TA_], None, "pupil", home=True) is None  # removed from home since
    assert decide_pupil_data([TA_], PM_, "pupil", home=False).code is ErrorCode.FORBIDDEN
    assert decide_pupil_data([TA_], Role.VISITOR, "adult", home=False).code is ErrorCode.FORBIDDEN
    assert decide_pupil_data([TA_], None, "pupil", home=False).code is ErrorCode.NOT_FOUND
    assert decide_pupil_data([TA_], None, None, home=False).code is ErrorCode.NOT_FOUND
    for role in (Role.TEACHER_MEMBER, Role.PUPIL_ADMIN, Role.PUPIL_MEMBER, Role.MODERATOR):
        assert decide_pupil_data([role], PM_, "pupil", home=True).code is ErrorCode.FORBIDDEN, role
    assert decide_pupil_data([Role.VISITOR], PM_, "pupil", home=True).code is ErrorCode.NOT_FOUND
    assert decide_pupil_data([], PM_, "pupil", home=True).code is ErrorCode.NOT_MEMBER


def test_pupils_leave_their_password_and_their_account_to_their_teachers():
    for change in ("password", "delete"):
        assert decide_own_account("pupil", change).code is ErrorCode.FORBIDDEN
        assert decide_own_account("adult", change) is None
    assert decide_own_account("pupil", "export") is None  # their own export holds their mail


def test_only_teacher_admins_rename_rooms_the_journal_included_while_the_project_is_open():
    for role in ROLES:
        refusal = decide_room_change([role], Area.CHAT, "room", "rename")
        assert (refusal is None) is (role is Role.TEACHER_ADMIN), role
    assert decide_room_change([Role.TEACHER_ADMIN], Area.HOME, "journal", "rename") is None
    assert decide_room_change([], Area.CHAT, "room", "rename").code is ErrorCode.NOT_MEMBER
    closed = decide_room_change([Role.TEACHER_ADMIN], Area.HOME, "journal", "rename", closed=True)
    assert closed is not None and closed.code is ErrorCode.SPACE_CLOSED


@pytest.mark.parametrize("action", list(PlatformAction))
def test_only_platform_administrators_run_the_platforms_projects(action):
    """Not moderators (they moderate), not bots, not anyone without a platform role."""
    assert decide_platform("admin", action) is None
    for other in ("moderator", "bot", None, "", "Admin"):
        refusal = decide_platform(other, action)
        assert refusal is not None and refusal.code is ErrorCode.FORBIDDEN, other


def test_a_project_is_closed_by_its_teacher_admins_and_by_platform_administrators():
    assert decide_close([], "admin") is None  # in no project, and may close every one
    assert decide_close([Role.TEACHER_ADMIN], None) is None
    for roles, platform_role in (([Role.MODERATOR], "moderator"), ([Role.TEACHER_MEMBER], None),
                                 ([Role.PUPIL_ADMIN], None), ([Role.VISITOR, Role.MODERATOR], "moderator")):
        assert decide_close(roles, platform_role).code is ErrorCode.FORBIDDEN
    assert decide_close([], None).code is ErrorCode.NOT_MEMBER
    assert decide_close([], "moderator").code is ErrorCode.NOT_MEMBER


def test_a_removed_pupil_is_added_back_by_the_teachers_of_their_home_only():
    TA_, TM_, PA_, PM_ = Role.TEACHER_ADMIN, Role.TEACHER_MEMBER, Role.PUPIL_ADMIN, Role.PUPIL_MEMBER
    assert decide_readd([TA_], PM_, home=True) is None
    assert decide_readd([TA_], PA_, home=True) is None
    assert decide_readd([TM_], PM_, home=True) is None
    assert decide_readd([TM_], PA_, home=True).code is ErrorCode.FORBIDDEN  # as for an invitation
    for actor in (PA_, PM_, Role.VISITOR, Role.MODERATOR):
        assert decide_readd([actor], PM_, home=True).code is ErrorCode.FORBIDDEN
    # another project's teachers: the pupil answers like no one
    assert decide_readd([TA_], PM_, home=False).code is ErrorCode.NOT_FOUND
    assert decide_readd([TM_], PM_, home=False).code is ErrorCode.NOT_FOUND
    assert decide_readd([], PM_, home=True).code is ErrorCode.NOT_MEMBER


def test_a_platform_moderator_placed_in_a_project_stays_a_visitor_there():
    TA_, V_ = Role.TEACHER_ADMIN, Role.VISITOR
    for new in (TA_, Role.TEACHER_MEMBER):
        assert decide_member_change([TA_], 1, 2, V_, None, new, admins=1, staff=True).code is ErrorCode.FORBIDDEN
    assert decide_member_change([TA_], 1, 2, V_, None, None, admins=1, staff=True) is None  # removed
    assert decide_member_change([V_, Role.MODERATOR], 2, 2, V_, None, None, admins=1, staff=True) is None  # leaves
    assert decide_member_change([TA_], 1, 2, V_, None, Role.TEACHER_MEMBER, admins=1) is None  # anyone else: yes
