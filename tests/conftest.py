"""Test-wide settings. Hypothesis runs without deadlines and slow-data health checks: CI
machines have 2 shared cores, and a property test must fail on a wrong answer, not on a
busy machine."""

from hypothesis import HealthCheck, settings

settings.register_profile(
    "eapo", deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large]
)
settings.load_profile("eapo")
