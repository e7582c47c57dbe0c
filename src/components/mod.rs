//! Reusable UI pieces.
