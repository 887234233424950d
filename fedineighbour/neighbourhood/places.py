"""Geography of the exchange: distances, bounding boxes, the published (fuzzed) point, neighbourhoods.

Privacy (DESIGN.md §5): the exact point of a post stays on the server. What others see is
`fuzz(exact)`: the exact point snapped to a ~100 m grid, then moved by an offset of FUZZ_MIN_M to
FUZZ_MAX_M metres in a direction, both derived with HMAC-SHA256 from the server secret, the resident
and the snapped point. The same resident at the same place therefore always shows the same published
point (twenty posts from one home cannot be averaged back to it), another resident at the same place
shows another point, and without the secret the offset cannot be undone.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from dataclasses import dataclass
from pathlib import Path

from fedineighbour.config import Settings

EARTH_RADIUS_KM = 6371.0088
GRID_M = 100.0  # exact points are snapped to this grid before the offset
FUZZ_MIN_M = 150.0
FUZZ_MAX_M = 450.0
# The farthest a published point can be from the exact one: offset plus half a grid diagonal.
MAX_FUZZ_KM = (FUZZ_MAX_M + GRID_M * math.sqrt(2) / 2) / 1000.0
M_PER_DEG_LAT = 111_320.0


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def bounding_box(lat: float, lon: float, radius_km: float) -> tuple[float, float, float, float]:
    """(min_lat, max_lat, min_lon, max_lon) containing every point within radius_km of (lat, lon)."""
    dlat = math.degrees(radius_km / EARTH_RADIUS_KM)
    min_lat, max_lat = max(-90.0, lat - dlat), min(90.0, lat + dlat)
    if min_lat <= -90.0 or max_lat >= 90.0:
        return min_lat, max_lat, -180.0, 180.0
    # widest longitude span is at the latitude farthest from the equator within the box
    widest = max(abs(min_lat), abs(max_lat))
    dlon = math.degrees(radius_km / (EARTH_RADIUS_KM * math.cos(math.radians(widest))))
    if dlon >= 180.0:
        return min_lat, max_lat, -180.0, 180.0
    return min_lat, max_lat, lon - dlon, lon + dlon


def lon_ranges(min_lon: float, max_lon: float) -> list[tuple[float, float]]:
    """Longitude intervals of a box, split in two when it crosses the antimeridian."""
    if min_lon < -180.0:
        return [(min_lon + 360.0, 180.0), (-180.0, max_lon)]
    if max_lon > 180.0:
        return [(min_lon, 180.0), (-180.0, max_lon - 360.0)]
    return [(min_lon, max_lon)]


def valid_point(lat: object, lon: object) -> str | None:
    """None if (lat, lon) is a valid WGS84 point, else what is wrong."""
    for name, value, bound in (("lat", lat, 90.0), ("lon", lon, 180.0)):
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            return f"{name} must be a number"
        if not -bound <= value <= bound:
            return f"{name} must be within -{bound:g}..{bound:g}"
    return None


def snap(lat: float, lon: float) -> tuple[float, float]:
    """The centre of the GRID_M cell holding the point (cells shrink in longitude away from the equator)."""
    step_lat = GRID_M / M_PER_DEG_LAT
    slat = (math.floor(lat / step_lat) + 0.5) * step_lat
    step_lon = GRID_M / (M_PER_DEG_LAT * max(0.01, math.cos(math.radians(slat))))
    slon = (math.floor(lon / step_lon) + 0.5) * step_lon
    return slat, slon


def _move(lat: float, lon: float, bearing: float, metres: float) -> tuple[float, float]:
    dlat = metres * math.cos(bearing) / M_PER_DEG_LAT
    dlon = metres * math.sin(bearing) / (M_PER_DEG_LAT * max(0.01, math.cos(math.radians(lat))))
    new_lat = max(-90.0, min(90.0, lat + dlat))
    new_lon = (lon + dlon + 180.0) % 360.0 - 180.0
    return new_lat, new_lon


@dataclass(frozen=True)
class Neighbourhood:
    name: str
    lat: float
    lon: float


class Fuzzer:
    """Published points from exact ones. Build once per process with the server secret."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("the server secret is too short")
        self._secret = secret

    @classmethod
    def from_file(cls, path: Path) -> Fuzzer:
        try:
            secret = path.read_bytes().strip()
        except OSError as exc:
            raise RuntimeError(f"server secret {path}: {exc.strerror} (run `fedineighbour init`)") from None
        return cls(secret)

    def offset(self, resident: str, lat: float, lon: float) -> tuple[float, float]:
        """(bearing in radians, distance in metres) for this resident at this snapped point."""
        slat, slon = snap(lat, lon)
        message = f"offer-place\x00{resident}\x00{slat:.6f}\x00{slon:.6f}".encode()
        digest = hmac.new(self._secret, message, hashlib.sha256).digest()
        u1 = int.from_bytes(digest[:8], "big") / 2**64
        u2 = int.from_bytes(digest[8:16], "big") / 2**64
        return u1 * 2 * math.pi, FUZZ_MIN_M + u2 * (FUZZ_MAX_M - FUZZ_MIN_M)

    def fuzz(self, resident: str, lat: float, lon: float) -> tuple[float, float]:
        """The published point: stable for (secret, resident, ~100 m cell), rounded to about 1 m."""
        bearing, metres = self.offset(resident, lat, lon)
        flat, flon = _move(*snap(lat, lon), bearing, metres)
        return round(flat, 5), round(flon, 5)


def parse_neighbourhoods(raw: list | None) -> list[Neighbourhood]:
    """town.neighbourhoods from the settings: [{"name", "lat", "lon"}], entries without a point skipped."""
    out = []
    for item in raw or []:
        if not isinstance(item, dict) or not item.get("name"):
            continue
        try:
            out.append(Neighbourhood(str(item["name"]), float(item["lat"]), float(item["lon"])))
        except (KeyError, TypeError, ValueError):
            continue
    return out


def nearest_neighbourhood(areas: list[Neighbourhood], lat: float, lon: float) -> str:
    if not areas:
        return ""
    return min(areas, key=lambda n: haversine_km(lat, lon, n.lat, n.lon)).name


@dataclass(frozen=True)
class TownPlace:
    """What the offer rules need from the town settings."""

    name: str
    centre: tuple[float, float] | None
    perimeter_km: float
    neighbourhoods: tuple[Neighbourhood, ...]

    @classmethod
    def from_settings(cls, settings: Settings) -> TownPlace:
        town = settings.town
        centre = None
        if town.centre:
            centre = (float(town.centre["lat"]), float(town.centre["lon"]))
        return cls(name=town.name or settings.instance.name, centre=centre,
                   perimeter_km=float(settings.federation.perimeter_km),
                   neighbourhoods=tuple(parse_neighbourhoods(town.neighbourhoods)))

    def outside(self, lat: float, lon: float) -> bool:
        """True when the town has a centre and the point lies beyond its federation perimeter."""
        return (self.centre is not None and self.perimeter_km > 0
                and haversine_km(lat, lon, *self.centre) > self.perimeter_km)

    def neighbourhood_of(self, lat: float, lon: float) -> str:
        return nearest_neighbourhood(list(self.neighbourhoods), lat, lon)
