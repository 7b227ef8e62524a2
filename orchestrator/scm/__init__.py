"""The engine side of watching GitHub: which PRs belong to which session, when to ask
GitHub about them, and handing what changed to the sessions (``observer``)."""

from orchestrator.scm.observer import KickTarget, SCMObserver
from orchestrator.scm.refresh import LifecycleSink, observation_digest
from orchestrator.scm.settings import ObserverSettings

__all__ = ["KickTarget", "LifecycleSink", "ObserverSettings", "SCMObserver", "observation_digest"]
