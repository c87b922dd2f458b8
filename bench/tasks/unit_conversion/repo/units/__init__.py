"""Unit conversion for the route planner and the parcel scale."""
