"""Python wrappers of the Remote Predict Op."""
