"""What a follower who may not learn who the pupils are (a visitor: policy.sees_pupils) gets of an
event: the same event, with every pupil in it — a message's author, a feed record's actor, a
mail's sender and recipients —
made anonymous: no id, no name, the badge `pupil` and their school, as the public view shows
them ("a pupil of <school>"). Everything else is the event as everyone gets it.

The hub applies it on delivery (once per event, however many visitors follow the channel); the
session to replays; the services to what they answer over HTTP.
"""

from __future__ import annotations

from typing import Any

from protocol import Event

PUPIL_ROLES = frozenset({"pupil", "pupil_admin", "pupil_member"})  # a badge, or a member role (feed records)


def is_pupil(card: Any) -> bool:
    return isinstance(card, dict) and card.get("role") in PUPIL_ROLES


def anonymous(card: dict[str, Any]) -> dict[str, Any]:
    return {"id": None, "name": None, "school": card.get("school"), "role": "pupil"}


def shield_data(data: dict[str, Any]) -> dict[str, Any]:
    """`data` (an event's, a message's or a record's wire form) without the pupils' identities;
    the same object when it names none."""
    message = data.get("message")
    if isinstance(message, dict) and is_pupil(message.get("author")):
        data = {**data, "message": shield_message(message)}
    if is_pupil(data.get("author")):
        data = shield_message(data)
    if is_pupil(data.get("actor")):
        data = {**data, "actor": anonymous(data["actor"])}
    mail = data.get("mail")
    if isinstance(mail, dict) and (shielded := shield_mail(mail)) is not mail:
        data = {**data, "mail": shielded}
    return data


def shield_mail(mail: dict[str, Any]) -> dict[str, Any]:
    """A mail without its pupils' identities: a visitor who got a teacher's mail that also went
    to pupils learns that pupils of a school got it, not who they are."""
    sender, to = mail.get("from"), mail.get("to") or ()
    if not (is_pupil(sender) or any(map(is_pupil, to))):
        return mail
    return {
        **mail, "from": anonymous(sender) if is_pupil(sender) else sender,
        "to": [anonymous(c) if is_pupil(c) else c for c in to],
    }


def shield_message(message: dict[str, Any]) -> dict[str, Any]:
    return {**message, "author": anonymous(message["author"])} if is_pupil(message.get("author")) else message


def shield(event: Event) -> Event:
    """The event as a visitor gets it (the same object when it names no pupil)."""
    data = shield_data(event.data)
    return event if data is event.data else Event(event.channel, event.seq, event.kind, data)
