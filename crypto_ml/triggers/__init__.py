"""Airflow triggers of Crypto-ML (provider layout: one topic per module)."""
