"""The simulated hardware: workers, the network and the parameter server (SimPy processes)."""

from .environment import Environment
from .network import Network, SharedCapacity
from .server import ParameterServer
from .worker import Update, Worker

__all__ = ["Environment", "Network", "ParameterServer", "SharedCapacity", "Update", "Worker"]
