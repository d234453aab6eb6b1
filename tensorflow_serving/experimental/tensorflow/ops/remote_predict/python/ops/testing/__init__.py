"""Test fixtures for the Remote Predict Op."""
