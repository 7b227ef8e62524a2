"""``python main.py …`` is the same as the ``orchestrator`` command."""

from orchestrator.cli import main

if __name__ == "__main__":
    main()
