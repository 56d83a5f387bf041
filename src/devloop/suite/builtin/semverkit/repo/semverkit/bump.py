from __future__ import annotations

from semverkit.version import Version


def bump(version: Version, part: str, token: str = "rc") -> Version:
    """The next version: part is 'major', 'minor', 'patch' or 'prerelease'.

    Bumping a prerelease of the given part releases it (1.2.0-rc.1 --minor--> 1.2.0).
    'prerelease' increments the last numeric identifier, or starts `<token>.1` on a release.
    """
    v = version
    if part == "major":
        if v.is_prerelease and v.minor == 0 and v.patch == 0:
            return v.release()
        return Version(v.major + 1, 0, 0)
    if part == "minor":
        if v.is_prerelease and v.patch == 0:
            return v.release()
        return Version(v.major, v.minor + 1, 0)
    if part == "patch":
        if v.is_prerelease:
            return v.release()
        return Version(v.major, v.minor, v.patch + 1)
    if part == "prerelease":
        if not v.is_prerelease:
            return Version(v.major, v.minor, v.patch + 1, (token, "1"))
        pre = list(v.prerelease)
        if pre[-1].isdigit():
            pre[-1] = str(int(pre[-1]) + 1)
        else:
            pre.append("1")
        return Version(v.major, v.minor, v.patch, tuple(pre))
    raise ValueError(f"unknown part {part!r}; expected major, minor, patch or prerelease")
