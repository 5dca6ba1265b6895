"""The one exception a user mistake raises."""

import reprlib

# a value shown in a message is cut short: an error never expands a huge (or hostile) input
_REPR = reprlib.Repr()
_REPR.maxstring, _REPR.maxother, _REPR.maxlevel = 120, 120, 2
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = 6


class ScenarioError(ValueError):
    """Bad input: the message names the field path, the bad value and what is allowed."""

    def __init__(self, field: str, value, allowed: str):
        self.field, self.value, self.allowed = field, value, allowed
        super().__init__(f"{field}: {_REPR.repr(value)} is not allowed; expected {allowed}")
