"""Airflow sensors of Crypto-ML (provider layout: one topic per module)."""
