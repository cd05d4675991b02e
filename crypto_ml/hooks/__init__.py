"""Airflow hooks of Crypto-ML (provider layout: one topic per module)."""
