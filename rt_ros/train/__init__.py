"""Demonstrations -> dataset -> training -> export -> closed-loop evaluation."""
