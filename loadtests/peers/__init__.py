"""Servers TwinHub is compared with, speaking the same protocol shape to the same load generator."""
