"""Every service of one process, built once by the composition root (run/assemble.py) and handed
to the edges (ws/ and web/) as an argument: no edge builds a service or looks one up by name."""

from __future__ import annotations

from dataclasses import dataclass

from protocol.limits import Limits

from ..fanout.control import Changes
from ..fanout.directory import Directory
from ..fanout.hub import Hub
from ..fanout.presence import PresenceTracker
from ..ratelimit import RateLimiter
from .account import Accounts
from .audit import AuditLog
from .auth import Auth
from .bots import Bots
from .chat import Chat
from .feed import Feed
from .files import Files
from .invitations import Invitations
from .languages import Languages
from .mail import Mail
from .moderation import Moderation
from .platform import Platform
from .profiles import Profiles
from .projects import Projects
from .public import PublicView
from .pupils import Pupils
from .streams import Readers, Streams


@dataclass(slots=True)
class Services:
    auth: Auth
    directory: Directory
    hub: Hub
    changes: Changes
    chat: Chat
    mail: Mail
    feed: Feed
    moderation: Moderation
    projects: Projects
    platform: Platform
    pupils: Pupils
    invitations: Invitations
    public: PublicView
    bots: Bots
    audit: AuditLog
    accounts: Accounts
    profiles: Profiles
    languages: Languages
    files: Files
    presence: PresenceTracker
    readers: Readers
    streams: Streams
    limits: Limits
    typing_limiter: RateLimiter
