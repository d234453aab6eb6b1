"""Python side of the Remote Predict Op."""
