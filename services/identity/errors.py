"""The identity service's error codes."""

from shared.errors import BadRequest, Conflict, NotFound


class UserDeleted(NotFound):
    """The caller's account is being deleted: it answers as gone."""

    code = "user_deleted"
    detail = "This account is being deleted."


class OnboardingCompleted(Conflict):
    code = "onboarding_completed"
    detail = "Onboarding is already completed."


class IllegalTransition(Conflict):
    """An onboarding step that skips ahead, or ``completed`` asked for by the client."""

    code = "illegal_transition"
    detail = "Onboarding steps advance one at a time."


class ConfigNotFound(NotFound):
    code = "config_not_found"
    detail = "No such configuration value."


class LogLevelNotFound(NotFound):
    code = "log_level_not_found"
    detail = "No log level is set for that logger."


class ValueTypeRequired(BadRequest):
    code = "value_type_required"
    detail = "A new configuration key needs its value_type."


class ValueTypeMismatch(Conflict):
    code = "value_type_mismatch"
    detail = "The configuration key holds another value type."


class InvalidConfigValue(BadRequest):
    code = "invalid_config_value"
    detail = "The value does not fit the key's value type."
