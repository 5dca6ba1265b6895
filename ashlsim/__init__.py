"""ashlsim: a discrete-event simulator of heterogeneous distributed training clusters.

>>> import ashlsim
>>> result = ashlsim.run(ashlsim.Scenario())   # the built-in default scenario
>>> result.history.tail()                       # loss and accuracy vs simulated seconds
"""

from .compare import compare, load_recipe, summarize, verdict
from .engine import Simulation, run
from .errors import ScenarioError
from .models import register_model
from .results import Result
from .scenario import Scenario, default_scenario, load_scenario
from .strategies import register_strategy
from .sweep import sweep

__all__ = [
    "Result",
    "Scenario",
    "ScenarioError",
    "Simulation",
    "compare",
    "default_scenario",
    "load_recipe",
    "load_scenario",
    "register_model",
    "register_strategy",
    "run",
    "summarize",
    "sweep",
    "verdict",
]
__version__ = "0.1.0"
