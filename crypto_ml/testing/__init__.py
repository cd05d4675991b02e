"""Helpers for tests and benchmarks of Crypto-ML and of projects built on it (no network)."""
