"""Helpers the test folders share (imported by name: ``from tests.helpers import browser``)."""
