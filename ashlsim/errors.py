"""The one exception a user mistake raises."""


class ScenarioError(ValueError):
    """Bad input: the message names the field path, the bad value and what is allowed."""

    def __init__(self, field: str, value, allowed: str):
        self.field, self.value, self.allowed = field, value, allowed
        super().__init__(f"{field}: {value!r} is not allowed; expected {allowed}")
