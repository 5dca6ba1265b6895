"""The simulated hardware: workers, the network and the parameter server (SimPy processes)."""

from .network import Network, SharedCapacity
from .server import ParameterServer
from .worker import Update, Worker

__all__ = ["Network", "ParameterServer", "SharedCapacity", "Update", "Worker"]
