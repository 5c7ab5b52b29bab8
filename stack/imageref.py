"""Image references (`[registry/]repository[:tag][@digest]`), split one way everywhere."""

from __future__ import annotations

from dataclasses import dataclass

from packaging.version import InvalidVersion, Version

from stack.versions import release

# Docker Hub spellings of a reference that stack.yaml writes without them.
_HUB_PREFIXES = ("docker.io/library/", "docker.io/", "index.docker.io/library/", "index.docker.io/")


@dataclass(frozen=True)
class ImageRef:
    repository: str
    tag: str | None = None
    digest: str | None = None

    @classmethod
    def parse(cls, text: str) -> ImageRef:
        """`localhost:5000/prom/prometheus:v3.1.0@sha256:ab` -> repository, tag `v3.1.0`, digest `sha256:ab`.

        The tag is what follows the last `:` of the last path part: a registry port is no tag.
        """
        name, _, digest = text.partition("@")
        repository, tag = name, None
        if ":" in name.rsplit("/", 1)[-1]:
            repository, _, tag = name.rpartition(":")
        return cls(repository, tag or None, digest or None)

    @property
    def short(self) -> str:
        """The reference as stack.yaml writes it: `docker.io/library/caddy:2` -> `caddy:2`."""
        text = str(self)
        for prefix in _HUB_PREFIXES:
            if text.startswith(prefix):
                return text[len(prefix) :]
        return text

    @property
    def tagged(self) -> str:
        """The reference without its digest: `caddy:2@sha256:ab` -> `caddy:2` (Swarm pins by digest)."""
        return f"{self.repository}:{self.tag}" if self.tag else self.repository

    @property
    def version(self) -> Version | None:
        """The tag as a version when it is one (`v3.1.0`, `2.8`); None for `latest`, `2-alpine` or no tag."""
        if not self.tag:
            return None
        try:
            return Version(self.tag)
        except InvalidVersion:
            return None

    @property
    def release(self) -> str | None:
        """The x.y.z the tag starts with: `prom/prometheus:v3.14.0` -> `3.14.0`, `caddy:2.8.4-alpine` ->
        `2.8.4`; None for `latest`, `2.8`, or no tag (a digest alone)."""
        return release(self.tag)

    def pin_problem(self) -> str | None:
        """Why this reference does not pin an image (no tag, or `latest`), None when it does."""
        if self.digest:
            return None
        if self.tag is None:
            return "has no tag; pin a version"
        if self.tag == "latest":
            return "uses 'latest'; pin a version"
        return None

    def __str__(self) -> str:
        text = self.repository
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text
