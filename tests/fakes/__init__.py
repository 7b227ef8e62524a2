"""Faithful fakes of the outside services the daemon talks to, for tests."""
