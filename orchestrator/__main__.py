"""``python -m orchestrator …`` is the ``orchestrator`` command (``start`` runs it this way)."""

from orchestrator.cli import main

if __name__ == "__main__":
    main()
