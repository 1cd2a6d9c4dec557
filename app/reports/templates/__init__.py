"""Report templates (API-ISS-027/031): saved, versioned, shareable report definitions."""
