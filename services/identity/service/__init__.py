"""Identity's use cases, one module per concern (the SQL they need is in ``repository.py``):

* ``users.py`` — creation on first sight, the profile, deletion and the final purge;
* ``clerk.py`` — Clerk deliveries: payload fields, applied exactly once per svix-id;
* ``onboarding.py`` — the one-step-at-a-time onboarding and its completion by billing;
* ``runtime_config.py`` — typed runtime configuration and log levels;
* ``inspection.py`` — one user across every service's tables, inconsistencies flagged.
"""

from .clerk import apply_clerk_event
from .inspection import user_dossier
from .onboarding import complete_onboarding, submit_onboarding
from .runtime_config import config, log_level, put_config, put_log_level
from .users import (
    ask_again,
    create_user,
    ensure_profile,
    purge_deleted_users,
    read_profile,
    record_purged,
    search_users,
    start_deletion,
    update_profile,
)

__all__ = [
    "apply_clerk_event",
    "ask_again",
    "complete_onboarding",
    "config",
    "create_user",
    "ensure_profile",
    "log_level",
    "purge_deleted_users",
    "put_config",
    "put_log_level",
    "read_profile",
    "record_purged",
    "search_users",
    "start_deletion",
    "submit_onboarding",
    "update_profile",
    "user_dossier",
]
