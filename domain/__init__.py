"""Business rules of Video-OpusClip: tables, services, schemas and thin controllers per area."""
