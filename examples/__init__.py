"""Examples of using losslab on your own model (see README, "Your own model")."""
