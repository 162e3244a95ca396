"""Development tooling that ships with the repository, not with the trainer image: the shipped
assets (models and data from package registries) and the demo (`make demo`) that needs moto."""
