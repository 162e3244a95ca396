"""Development tooling that ships with the repository, not with the trainer image: the shipped
assets (models and data from package registries), the demo (`make demo`) that needs moto, and the
test setup stage's parts (which caches may be built where, and builds that show their progress)."""
