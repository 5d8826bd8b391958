"""AVS-Net networks: MiDaS-style core, echo encoder, cross-modal attention, metric-bins head."""
