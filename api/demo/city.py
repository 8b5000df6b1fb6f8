"""The synthetic Xining: units, twelve months of balanced ledgers, manifests, statistics.

Everything here is pure and deterministic for a seed (one ``random.Random``; no clock, no set
iteration order): the same ``(seed, units, year)`` gives the same units, drafts and manifests.

How the city is calibrated to the plan (``shared/domain/indicators.md`` §3, targets.csv):
- general industrial: every producer node utilises a share ``u ~ U(0.922, 0.938)`` of what it
  generates (own use or a licensed building-material plant), keeps 1 % in stock and landfills
  the rest → ``U / G`` ≈ 93 %.
- hazardous: receivers treat everything they receive in the month; producers ship all but a
  constant working stock, except that in December they hold back 0.8 % of their year's
  generation (year-end backlog → ``S``), and one workshop ships to an unregistered hand (``X``)
  → ``(U + D) / G`` ≈ 99 %.
- medical: hospitals and clinics ship everything every month to the disposal centre, which
  burns it the same month → 100 %.
- film: co-ops lay film in spring and hand ``r ~ U(0.88, 0.92)`` of it to collection points in
  autumn → ≈ 90 %.
Realistic faults (for the anomaly lists) are listed in ``City.faults``.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from nofei.catalogue import Catalogue, Stream
from nofei.domain.ledger import LedgerDraft, StockLine, TransferLine, TreatmentLine
from nofei.domain.units import CREDIT_ALPHABET, make_credit_code

T = 1000  # kg per tonne

COUNTIES = ("630106", "630121", "630123")
URBAN = ("630102", "630103", "630104", "630105")
PARK_NAMES = ("GANHE", "NANCHUAN", "DONGCHUAN", "BEICHUAN", "SHENGWU")
_NAME_WORDS = ("祁连", "昆仑", "湟水", "青海湖", "高原", "三江", "日月", "柴达木", "金河", "雪峰", "丹噶尔",
               "塔尔", "河湟", "西海", "夏都", "宗喀", "鲁沙尔", "多巴", "南山", "北山", "康川", "青藏",
               "瑞丰", "鑫源", "恒达", "中宁", "佳和", "华泰", "兴盛", "裕隆")


@dataclass(frozen=True, slots=True)
class ProducerProfile:
    """A kind of producing unit: where it sits, what it generates (t/month, low–high) and how often it ships."""

    kind: str
    label: str  # name suffix
    share: float  # share of the producing units
    places: tuple[str, ...]  # parks or districts
    codes: tuple[tuple[str, float, float], ...]
    dept: str = "9"  # 登记管理部门: 9 工商, 1 机构编制 (public hospitals)
    org: str = "1"  # 机构类别: 1 企业/事业, 3 农民专业合作社


PRODUCERS: tuple[ProducerProfile, ...] = (
    ProducerProfile("smelter", "铝业有限公司", 0.05, ("GANHE", "DONGCHUAN"),
                    (("SW01", 800, 3000), ("321-024-48", 20, 80), ("321-023-48", 5, 20), ("900-249-08", 0.5, 2))),
    ProducerProfile("steel", "特钢有限公司", 0.04, ("GANHE", "NANCHUAN"),
                    (("SW01", 1000, 4000), ("SW03", 200, 800), ("900-214-08", 1, 3), ("336-064-17", 2, 10))),
    ProducerProfile("chemical", "化工有限公司", 0.10, ("NANCHUAN", "BEICHUAN", "SHENGWU", "GANHE"),
                    (("SW16", 50, 300), ("SW07", 20, 100), ("900-402-06", 1, 10), ("900-349-34", 2, 15),
                     ("900-041-49", 0.5, 3), ("900-039-49", 0.5, 2))),
    ProducerProfile("power", "热电有限公司", 0.03, ("GANHE", "DONGCHUAN", "630121"),
                    (("SW02", 2000, 8000), ("SW03", 500, 1500), ("SW06", 500, 2000), ("772-007-50", 2, 10),
                     ("900-220-08", 0.2, 1))),
    ProducerProfile("workshop", "汽车维修有限公司", 0.12, URBAN + ("630106",),
                    (("900-214-08", 0.1, 0.5), ("900-052-31", 0.05, 0.3), ("900-041-49", 0.02, 0.1))),
    ProducerProfile("hospital", "人民医院", 0.05, URBAN + ("630121", "630123"),
                    (("841-001-01", 3, 15), ("841-002-01", 0.3, 2), ("841-003-01", 0.1, 0.5),
                     ("841-004-01", 0.05, 0.3), ("841-005-01", 0.05, 0.2)), dept="1", org="2"),
    ProducerProfile("clinic", "社区卫生服务中心", 0.14, URBAN + COUNTIES,
                    (("841-001-01", 0.05, 0.4), ("841-002-01", 0.01, 0.05)), dept="1", org="2"),
    ProducerProfile("film_user", "种植专业合作社", 0.13, COUNTIES, (("NM01", 5, 40), ("NM02", 2, 15)), org="3"),
    ProducerProfile("restaurant", "餐饮有限公司", 0.22, URBAN + COUNTIES, (("CC01", 2, 15), ("CC02", 0.2, 1.5))),
    ProducerProfile("canteen", "职工食堂", 0.07, URBAN, (("CC01", 3, 20), ("CC03", 0.5, 3))),
    ProducerProfile("film_point", "农膜回收网点", 0.05, COUNTIES, ()),
)

# Facilities: kind → (name, place, roles, methods it uses per code, permit categories or codes).
FACILITIES: tuple[tuple[str, str, str, tuple[str, ...], dict[str, str], tuple[str, ...]], ...] = (
    ("building_materials", "新型建材有限公司", "GANHE", ("utiliser",),
     {"SW01": "C2", "SW02": "C2", "SW03": "R5", "SW06": "C2", "SW16": "R5", "SW07": "C2"}, ()),
    ("sw_landfill", "一般工业固体废物填埋场", "630106", ("disposer",),
     {"SW01": "D1", "SW02": "D1", "SW03": "D1", "SW06": "D1", "SW16": "D1", "SW07": "D1", "CC01": "D1", "CC03": "D1"}, ()),
    ("hw_centre", "危险废物处置中心", "GANHE", ("disposer", "utiliser"),
     {"900-210-08": "D10", "321-023-48": "D1", "900-349-34": "D9", "900-041-49": "D10", "900-039-49": "D10",
      "772-003-18": "D1", "336-064-17": "D9"},
     ("HW08", "HW17", "HW18", "HW34", "HW48", "HW49")),
    ("cement_kiln", "水泥有限公司", "630121", ("disposer",), {"336-064-17": "C1", "900-041-49": "C1"}, ("HW17", "HW49")),
    ("oil_regen", "废矿物油再生有限公司", "DONGCHUAN", ("utiliser",),
     {"900-249-08": "R9", "900-214-08": "R9", "900-220-08": "R9", "900-218-08": "R9"}, ("HW08",)),
    ("battery", "废铅蓄电池回收利用有限公司", "NANCHUAN", ("utiliser",), {"900-052-31": "R4"}, ("HW31",)),
    ("al_ash", "铝灰资源化利用有限公司", "GANHE", ("utiliser",), {"321-024-48": "R4"}, ("HW48",)),
    ("solvent", "溶剂回收有限公司", "BEICHUAN", ("utiliser",), {"900-402-06": "R2"}, ("HW06",)),
    ("catalyst", "催化剂再生有限公司", "SHENGWU", ("utiliser",), {"772-007-50": "R8"}, ("HW50",)),
    ("medical_centre", "医疗废物集中处置中心", "630106", ("disposer",),
     {"841-001-01": "Y10", "841-002-01": "Y10", "841-003-01": "Y10", "841-004-01": "Y10", "841-005-01": "Y11"},
     ("HW01",)),
    ("hw_collector", "危险废物收集有限公司", "630105", ("collector",), {}, ("HW08", "HW31", "HW49")),
    ("film_recycler", "废旧农膜再生利用有限公司", "630123", ("utiliser",), {"NM01": "R3", "NM02": "R3"}, ()),
    ("kitchen", "餐厨垃圾资源化处理有限公司", "630104", ("utiliser",), {"CC01": "R3", "CC02": "R9", "CC03": "R3"}, ()),
    ("carrier", "危险货物运输有限公司", "630105", ("carrier",), {}, ()),
)

# unit_type per kind (issue 18): 汽修 workshops and kitchens are social sources, hospitals and clinics medical
# institutions, facilities with a hazardous-waste permit licensed; everything else is industrial.
KIND_TYPES: dict[str, str] = {"workshop": "social_source", "restaurant": "social_source", "canteen": "social_source",
                              "hospital": "medical_institution", "clinic": "medical_institution"}

# Where each code goes from its producer (facility kind). Codes not listed are kept (old stock).
ROUTES: dict[str, str] = {
    "321-024-48": "al_ash", "321-023-48": "hw_centre", "900-249-08": "oil_regen", "900-214-08": "oil_regen",
    "900-220-08": "oil_regen", "336-064-17": "cement_kiln", "900-402-06": "solvent", "900-349-34": "hw_centre",
    "900-041-49": "hw_centre", "900-039-49": "hw_centre", "772-007-50": "catalyst", "900-052-31": "battery",
    "772-003-18": "hw_centre",
}
MEDICAL_CODES = ("841-001-01", "841-002-01", "841-003-01", "841-004-01", "841-005-01")
QUARTERLY = {"321-023-48", "772-007-50", "900-220-08", "336-064-17"}
# monthly generation factors: film is laid in spring, canteens pause in school holidays, heating season burns more coal.
SEASON: dict[str, tuple[float, ...]] = {
    "NM01": (0, 0, 0, 0.5, 0.5, 0, 0, 0, 0, 0, 0, 0),
    "NM02": (0, 0, 1.0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
    "canteen": (1, 0.4, 1, 1, 1, 1, 0.5, 0.4, 1, 1, 1, 1),
    "power": (1.3, 1.2, 1.1, 0.9, 0.8, 0.8, 0.8, 0.8, 0.9, 1.1, 1.2, 1.3),
}
FILM_RECOVERY_MONTHS = (9, 10, 11)
ASH = "772-003-18"  # 焚烧飞灰 of the incinerators
# facilities treat what they received this month, in this order (the medical centre's ash reaches the HW centre)
TREATING = ("medical_centre", "building_materials", "oil_regen", "battery", "al_ash", "solvent", "catalyst",
            "cement_kiln", "film_recycler", "kitchen", "hw_centre", "sw_landfill")


@dataclass
class DemoUnit:
    """A unit of the demo city, as the registry takes it (``register_unit`` payload) plus its kind."""

    credit_code: str
    name: str
    district: str
    park: str | None
    kind: str
    roles: list[str]
    permits: list[dict[str, object]] = field(default_factory=list)
    methods: dict[str, str] = field(default_factory=dict)
    unit_type: str = "industrial"
    small_clinic: bool = False

    def payload(self) -> dict[str, object]:
        return {"credit_code": self.credit_code, "name": self.name, "district": self.district, "park": self.park,
                "roles": list(self.roles), "permits": list(self.permits), "unit_type": self.unit_type,
                "small_clinic": self.small_clinic}


@dataclass
class ManifestLine:
    code: str
    sent_kg: int
    received_kg: int | None
    method: str | None


@dataclass
class PlannedManifest:
    """A manifest as the demo plans it; ``status`` is where its lifecycle stops."""

    number: str
    shipper: str
    receiver: str
    carrier: str
    month: int
    shipped: date
    received: date | None
    lines: list[ManifestLine]
    status: str = "received"  # received | in_transit | rejected
    reason: str = ""


@dataclass
class City:
    seed: int
    size: int
    year: int
    units: list[DemoUnit]
    drafts: list[LedgerDraft]  # month-major, then by credit code
    manifests: list[PlannedManifest]
    statistics: dict[str, Decimal]  # 工业增加值 (万元) per region
    faults: dict[str, list[str]]
    unregistered: list[str]  # valid credit codes that appear as counterparts but are not registered
    months: int = 12
    showcase: str = ""  # the enterprise whose token the demo prints (a chemical plant with manifests)
    medical_institutions: dict[str, int] = field(default_factory=dict)  # 医疗卫生机构总数 per region

    def unit(self, code: str) -> DemoUnit:
        return next(u for u in self.units if u.credit_code == code)


def _place(place: str, catalogue: Catalogue) -> tuple[str, str | None]:
    """A park code or a district code → (district, park)."""
    if place in catalogue.parks:
        return catalogue.parks[place].district, place
    return place, None


@dataclass(frozen=True, slots=True)
class _Shipment:
    """What every line of one shipment shares."""

    shipped: date
    received: date
    number: str | None
    carrier: str | None
    fault: str


class _Books:
    """Running ledgers of one month for every unit: stock per code, treatments, transfers."""

    def __init__(self, year: int) -> None:
        self.year = year
        self.stock: dict[tuple[str, str], int] = defaultdict(int)
        self.codes: dict[str, list[str]] = defaultdict(list)  # unit → codes it ever held, in first-use order
        self.reset()

    def reset(self) -> None:
        self.open: dict[tuple[str, str], int] = dict(self.stock)
        self.gen: dict[tuple[str, str], int] = defaultdict(int)
        self.treat: dict[str, list[tuple[str, str, int]]] = defaultdict(list)
        self.moves: dict[str, list[TransferLine]] = defaultdict(list)

    def touch(self, unit: str, code: str) -> None:
        if code not in self.codes[unit]:
            self.codes[unit].append(code)

    def generate(self, unit: str, code: str, kg: int) -> None:
        self.touch(unit, code)
        self.gen[(unit, code)] += kg
        self.stock[(unit, code)] += kg

    def treat_own(self, unit: str, code: str, method: str, kg: int) -> None:
        if kg <= 0:
            return
        self.touch(unit, code)
        self.treat[unit].append((code, method, kg))
        self.stock[(unit, code)] -= kg
        assert self.stock[(unit, code)] >= 0, (unit, code)

    def move_out(self, unit: str, line: TransferLine) -> None:
        self.touch(unit, line.code)
        self.moves[unit].append(line)
        self.stock[(unit, line.code)] -= line.qty_kg
        assert self.stock[(unit, line.code)] >= 0, (unit, line.code)

    def move_in(self, unit: str, line: TransferLine) -> None:
        self.touch(unit, line.code)
        self.moves[unit].append(line)
        self.stock[(unit, line.code)] += line.qty_kg


class _Planner:
    def __init__(self, seed: int, size: int, year: int, catalogue: Catalogue) -> None:
        self.rng = random.Random(f"nofei-demo:{seed}:{size}:{year}")
        self.seed, self.size, self.year, self.cat = seed, size, year, catalogue
        self.units: list[DemoUnit] = []
        self.by_kind: dict[str, list[DemoUnit]] = defaultdict(list)
        self.used_codes: set[str] = set()
        self.serial = 0
        self.manifests: list[PlannedManifest] = []
        self.faults: dict[str, list[str]] = defaultdict(list)
        self.scale: dict[tuple[str, str], float] = {}
        self.util_share: dict[str, float] = {}
        self.film_recovery: dict[str, float] = {}
        self.unregistered: list[str] = []
        self.film_used: dict[tuple[str, str], int] = defaultdict(int)
        self.year_gen: dict[tuple[str, str], int] = defaultdict(int)
        self.working: dict[tuple[str, str], int] = defaultdict(int)
        self.fault_plan: list[tuple[str, str, int]] = []  # (fault, unit, month)
        self.streams: dict[str, Stream] = {c.code: c.stream for c in catalogue.codes.values()}

    # --- units ----------------------------------------------------------------------------
    def credit_code(self, district: str, dept: str = "9", org: str = "1") -> str:
        while True:
            body = "MA" + "".join(self.rng.choice(CREDIT_ALPHABET) for _ in range(7))
            code = make_credit_code(district, body, dept=dept, kind=org)
            if code not in self.used_codes:
                self.used_codes.add(code)
                return code

    def name(self, district: str, label: str) -> str:
        area = self.cat.districts[district].name_zh.replace("回族土族自治县", "").rstrip("区县")
        return f"{area}{self.rng.choice(_NAME_WORDS)}{self.rng.choice(_NAME_WORDS)}{label}"

    def add(self, kind: str, label: str, place: str, roles: list[str], dept: str = "9", org: str = "1") -> DemoUnit:
        district, park = _place(place, self.cat)
        code = self.credit_code(district, dept, org)
        taken = {u.name for u in self.units}
        nm = self.name(district, label)
        for _ in range(4):
            if nm not in taken:
                break
            nm = self.name(district, label)
        if nm in taken:
            nm = nm.replace(label, f"第{len(self.units)}{label}")
        u = DemoUnit(code, nm, district, park, kind, roles, unit_type=KIND_TYPES.get(kind, "industrial"))
        # every other 社区卫生服务中心 has ≤ 19 beds (豁免清单 item 2); chosen by count, not by the random stream
        u.small_clinic = kind == "clinic" and len(self.by_kind[kind]) % 2 == 0
        self.units.append(u)
        self.by_kind[kind].append(u)
        return u

    def make_units(self) -> None:
        copies = max(1, self.size // 500)
        for kind, label, place, roles, methods, cats in FACILITIES:
            for i in range(1 if kind in ("hw_centre", "medical_centre") else copies + (kind == "carrier")):
                u = self.add(kind, label, place, list(roles))
                u.methods = dict(methods)
                if cats:
                    u.unit_type = "licensed"
                    u.permits = [{"number": f"青危许{self.year - 2}{len(self.units):04d}{i}",
                                  "waste_codes": list(cats), "methods": sorted(set(methods.values())),
                                  "capacity_t": "0", "valid_from": date(self.year - 2, 1, 1),
                                  "valid_to": date(self.year + 3, 12, 31)}]
        for u in self.by_kind["hw_collector"]:  # a collector names the method its waste will finally meet
            u.methods = {c: self.by_kind[ROUTES[c]][0].methods[c] for c in ("900-214-08", "900-052-31", "900-041-49")}
        n_prod = max(len(PRODUCERS), self.size - len(self.units))
        counts = [max(1, round(p.share * n_prod)) for p in PRODUCERS]
        for p, n in zip(PRODUCERS, counts, strict=True):
            unit_roles = ["collector"] if p.kind == "film_point" else ["producer"]
            for _ in range(n):
                self.add(p.kind, p.label, self.rng.choice(p.places), unit_roles, p.dept, p.org)
        for p in PRODUCERS:
            for u in self.by_kind[p.kind]:
                size = self.rng.lognormvariate(0, 0.35)
                for code, lo, hi in p.codes:
                    self.scale[(u.credit_code, code)] = (lo + (hi - lo) * self.rng.random()) * size
                self.util_share[u.credit_code] = self.rng.uniform(0.922, 0.938)
                self.film_recovery[u.credit_code] = self.rng.uniform(0.88, 0.92)

    # --- flows ----------------------------------------------------------------------------
    def pick(self, kind: str, who: str) -> DemoUnit:
        """The facility of ``kind`` that serves unit ``who`` (stable: by the unit's position)."""
        options = self.by_kind[kind]
        return options[sum(map(ord, who)) % len(options)]

    def manifest_no(self, shipper: DemoUnit) -> str:
        self.serial += 1
        return f"{self.year}{shipper.district[:4]}{self.serial:06d}"

    def day(self, month: int) -> date:
        return date(self.year, month, self.rng.randint(1, 20))

    def transfer(self, books: _Books, month: int, src: DemoUnit, dst_code: str, dst_name: str,
                 lines: list[tuple[str, int]], *, manifest: bool, receiver: DemoUnit | None,
                 fault: str = "") -> None:
        """Ship ``lines`` (code, kg) from ``src`` to a receiver; both sides' rows, and the manifest."""
        lines = [(c, kg) for c, kg in lines if kg > 0]
        if not lines:
            return
        ship = self._shipment(month, src, manifest=manifest, receiver=receiver, fault=fault)
        mlines = [self._move(books, src, dst_code, dst_name, receiver, code, kg, ship) for code, kg in lines]
        arrived = fault != "in_transit"
        if ship.number is not None and receiver is not None and ship.carrier is not None:
            self.manifests.append(PlannedManifest(
                ship.number, src.credit_code, receiver.credit_code, ship.carrier, month, ship.shipped,
                ship.received if arrived else None, mlines, status="received" if arrived else "in_transit"))
        if fault:
            self.faults[fault].append(ship.number or f"{src.credit_code}→{dst_code} {month:02d}")

    def _shipment(self, month: int, src: DemoUnit, *, manifest: bool, receiver: DemoUnit | None,
                  fault: str) -> _Shipment:
        """The day, the receipt day, the manifest number (hazardous with a receiver, unless the fault is
        shipping without one) and the carrier of a shipment."""
        shipped = self.day(month)
        received = shipped if fault != "late_receipt" else date(self.year, month, min(28, shipped.day + 9))
        hazardous = manifest and fault != "no_manifest"
        number = self.manifest_no(src) if hazardous and receiver is not None else None
        carrier = self.pick("carrier", src.credit_code).credit_code if manifest else None
        return _Shipment(shipped, received, number, carrier, fault)

    def _move(self, books: _Books, src: DemoUnit, dst_code: str, dst_name: str, receiver: DemoUnit | None,
              code: str, kg: int, ship: _Shipment) -> ManifestLine:
        """One line of a shipment in both ledgers (the receiver books it unless it is still in transit)."""
        stream = self.streams.get(code)
        assert stream is not None
        method = receiver.methods.get(code) if receiver else None
        got = kg * 88 // 100 if ship.fault == "discrepancy" else kg
        books.move_out(src.credit_code, TransferLine(
            "out", ship.shipped, code, stream, kg, dst_code, dst_name, ship.number, ship.carrier, method))
        arrived = ship.fault != "in_transit"
        if receiver is not None and arrived:
            books.move_in(receiver.credit_code, TransferLine(
                "in", ship.received, code, stream, got, src.credit_code, src.name, ship.number))
        return ManifestLine(code, kg, got if arrived else None, method)

    def kg(self, unit: str, code: str, month: int, kind: str) -> int:
        base = self.scale[(unit, code)]
        factor = SEASON.get(code, SEASON.get(kind, (1.0,) * 12))[month - 1]
        return int(round(base * factor * self.rng.uniform(0.85, 1.15) * T))

    def month(self, books: _Books, m: int) -> None:
        """Plan one month: producers, then collectors, then facilities (a DAG, so one pass)."""
        for p in PRODUCERS:
            for u in self.by_kind[p.kind]:
                cc = u.credit_code
                for code, _lo, _hi in p.codes:
                    books.generate(cc, code, self.kg(cc, code, m, p.kind))
                self.ship_products(books, m, p.kind, u)
        self.forward_collected(books, m)
        for kind in TREATING:
            for u in self.by_kind[kind]:
                self.treat_received(books, m, kind, u)

    def forward_collected(self, books: _Books, m: int) -> None:
        """Collectors forward what they hold: the HW collector to each code's facility, film points to the
        film recycler."""
        for u in self.by_kind["hw_collector"]:
            groups: dict[str, list[tuple[str, int]]] = defaultdict(list)
            for code in books.codes[u.credit_code]:
                groups[ROUTES[code]].append((code, books.stock[(u.credit_code, code)]))
            for kind, lines in groups.items():
                r = self.pick(kind, u.credit_code)
                self.transfer(books, m, u, r.credit_code, r.name, lines, manifest=True, receiver=r)
        for u in self.by_kind["film_point"]:
            r = self.pick("film_recycler", u.credit_code)
            lines = [(c, books.stock[(u.credit_code, c)]) for c in books.codes[u.credit_code]]
            self.transfer(books, m, u, r.credit_code, r.name, lines, manifest=False, receiver=r)

    def treat_received(self, books: _Books, m: int, kind: str, u: DemoUnit) -> None:
        """A facility treats everything it holds of the codes it takes; incinerators make 4 % ash, which the
        medical centre ships to the HW centre and the HW centre landfills."""
        cc = u.credit_code
        burnt = 0
        for code in list(books.codes[cc]):
            q = books.stock[(cc, code)]
            if code not in u.methods or (code == ASH and kind == "hw_centre"):
                continue  # its own ash: generated and handled below
            method = u.methods[code]
            books.treat_own(cc, code, method, q)
            if method in ("D10", "Y10", "Y11"):
                burnt += q
        ash = burnt * 4 // 100
        if kind == "medical_centre" and ash:
            books.generate(cc, ASH, ash)
            r = self.by_kind["hw_centre"][0]
            self.transfer(books, m, u, r.credit_code, r.name, [(ASH, ash)], manifest=True, receiver=r)
        if kind == "hw_centre":
            if ash:
                books.generate(cc, ASH, ash)
            books.treat_own(cc, ASH, "D1", books.stock[(cc, ASH)])

    def ship_products(self, books: _Books, m: int, kind: str, u: DemoUnit) -> None:
        """What a producer hands over this month, by kind."""
        if kind == "film_point":
            return
        ship = {"film_user": self.ship_film, "restaurant": self.ship_kitchen, "canteen": self.ship_kitchen,
                "hospital": self.ship_medical, "clinic": self.ship_medical}.get(kind)
        if ship is not None:
            ship(books, m, u)
            return
        self.ship_general(books, m, kind, u)
        self.ship_hazardous(books, m, kind, u)

    def ship_film(self, books: _Books, m: int, u: DemoUnit) -> None:
        """Co-ops hand a share of the film they laid to a collection point in the recovery months."""
        cc = u.credit_code
        if m in FILM_RECOVERY_MONTHS:
            point = self.pick("film_point", cc)
            lines = []
            for code in ("NM01", "NM02"):
                used = self.film_used[(cc, code)]
                share = self.film_recovery[cc] / len(FILM_RECOVERY_MONTHS)
                lines.append((code, min(books.stock[(cc, code)], int(used * share))))
            self.transfer(books, m, u, point.credit_code, point.name, lines, manifest=False, receiver=point)
        for code in ("NM01", "NM02"):
            self.film_used[(cc, code)] += books.gen[(cc, code)]

    def ship_kitchen(self, books: _Books, m: int, u: DemoUnit) -> None:
        """Kitchen waste to the kitchen-waste plant (county restaurants without a contract: the landfill)."""
        cc = u.credit_code
        proc = self.pick("kitchen", cc)
        lines = [(c, books.stock[(cc, c)]) for c in books.codes[cc]]
        if u.district in ("630121", "630123") and self.util_share[cc] < 0.92:
            lf = self.pick("sw_landfill", cc)
            self.transfer(books, m, u, lf.credit_code, lf.name, [ln for ln in lines if ln[0] != "CC02"],
                          manifest=False, receiver=lf)
            lines = [ln for ln in lines if ln[0] == "CC02"]
        self.transfer(books, m, u, proc.credit_code, proc.name, lines, manifest=False,
                      receiver=proc)

    def ship_medical(self, books: _Books, m: int, u: DemoUnit) -> None:
        """Hospitals and clinics ship everything every month to the medical-waste centre."""
        cc = u.credit_code
        centre = self.by_kind["medical_centre"][0]
        lines = [(c, books.stock[(cc, c)]) for c in books.codes[cc]]
        self.transfer(books, m, u, centre.credit_code, centre.name, lines, manifest=True, receiver=centre)

    def ship_general(self, books: _Books, m: int, kind: str, u: DemoUnit) -> None:
        """General industrial codes: a share utilised (partly in the plant), 1 % kept, the rest landfilled."""
        cc = u.credit_code
        for code in books.codes[cc]:
            if self.streams.get(code) != "general_industrial":
                continue
            g = books.gen[(cc, code)]
            use = int(g * self.util_share[cc])
            landfill = g - use - g // 100
            if kind in ("steel", "power") and code in ("SW03", "SW02"):
                own = use // 3  # own use in the plant (R5 / C2), the rest sold to building materials
                books.treat_own(cc, code, "R5", own)
                use -= own
            bm = self.pick("building_materials", cc)
            lf = self.pick("sw_landfill", cc)
            self.transfer(books, m, u, bm.credit_code, bm.name, [(code, use)], manifest=False, receiver=bm)
            self.transfer(books, m, u, lf.credit_code, lf.name, [(code, landfill)], manifest=False, receiver=lf)

    def hazardous_due(self, books: _Books, m: int, kind: str, cc: str) -> dict[str, list[tuple[str, int]]]:
        """Hazardous codes due to ship this month, grouped by destination kind: all but the working stock
        (in December also the year-end backlog, 0.8 % of the year's generation: fate S); quarterly codes
        every third month; workshops ship through the collector."""
        groups: dict[str, list[tuple[str, int]]] = defaultdict(list)
        for code in books.codes[cc]:
            if self.streams.get(code) != "hazardous" or code not in ROUTES or (code in QUARTERLY and m % 3):
                continue
            hold = self.working[(cc, code)]
            if m == 12:
                hold += (self.year_gen[(cc, code)] + books.gen[(cc, code)]) * 8 // 1000
            q = max(0, books.stock[(cc, code)] - hold)
            groups["hw_collector" if kind == "workshop" else ROUTES[code]].append((code, q))
        return groups

    def ship_hazardous(self, books: _Books, m: int, kind: str, u: DemoUnit) -> None:
        """Hazardous waste to its facilities with a manifest, except where a fault is planned this month."""
        cc = u.credit_code
        for dest, lines in sorted(self.hazardous_due(books, m, kind, cc).items()):
            r = self.pick(dest, cc)
            fault = next((f for f, who, month in self.fault_plan if who == cc and month == m), "")
            if fault == "unregistered":
                self.transfer(books, m, u, self.unregistered[0], "个体废油回收户", lines, manifest=False,
                              receiver=None, fault=fault)
                continue
            self.transfer(books, m, u, r.credit_code, r.name, lines, manifest=True, receiver=r, fault=fault)


def _draft(unit: DemoUnit, month: str, books: _Books, catalogue: Catalogue, streams: dict[str, Stream]) -> LedgerDraft:
    cc = unit.credit_code
    stocks = []
    for code in books.codes[cc]:
        stream = streams[code]
        stocks.append(StockLine(code, stream, books.open.get((cc, code), 0), books.gen.get((cc, code), 0),
                                books.stock[(cc, code)], name=catalogue.codes[code].name_zh))
    treatments = []
    for code, method, kg in books.treat.get(cc, []):
        treatments.append(TreatmentLine(code, streams[code], method, kg))
    transfers = sorted(books.moves.get(cc, []), key=lambda t: (t.direction != "out", t.day, t.code, t.counterpart))
    return LedgerDraft(credit_code=cc, unit_name=unit.name, month=month, reporter="环保专员", phone="0971-0000000",
                       stocks=stocks, treatments=treatments, transfers=transfers)


def plan_city(*, seed: int = 1, units: int = 240, year: int = 2025, catalogue: Catalogue | None = None,
              months: int = 12) -> City:
    """Build the whole synthetic city in memory. Deterministic for ``(seed, units, year)``.

    ``months`` < 12 stops early (tests that only need the shape, not the year's calibration)."""
    cat = catalogue or Catalogue.default()
    p = _Planner(seed, units, year, cat)
    p.make_units()
    books = _Books(year)
    # opening stock on 1 January: a working stock of every hazardous code, old stock at two chemical plants
    for prof in PRODUCERS:
        for u in p.by_kind[prof.kind]:
            for code, _lo, _hi in prof.codes:
                if cat.stream_of(code) in ("hazardous", "general_industrial"):
                    k = int(p.scale[(u.credit_code, code)] * T * (0.3 if code in QUARTERLY else 0.1))
                    if prof.kind == "workshop":
                        k = 0
                    p.working[(u.credit_code, code)] = k
                    books.stock[(u.credit_code, code)] = k
                    books.touch(u.credit_code, code)
                elif prof.kind not in ("film_point",):
                    books.touch(u.credit_code, code)
    # old stock: expired chemicals written off in November of the year before and never handed over, so the
    # FIFO age of what is still held on 31 December is over a year (the November ledger is part of the demo)
    previous: list[LedgerDraft] = []
    for u in p.by_kind["chemical"][:2]:
        kg = int(p.rng.uniform(3, 12) * T)
        books.stock[(u.credit_code, "900-999-49")] = kg
        books.touch(u.credit_code, "900-999-49")
        p.faults["old_stock"].append(u.credit_code)
        previous.append(LedgerDraft(
            credit_code=u.credit_code, unit_name=u.name, month=f"{year - 1}-11", reporter="环保专员",
            phone="0971-0000000", stocks=[StockLine("900-999-49", "hazardous", 0, kg, kg,
                                                    name=cat.codes["900-999-49"].name_zh, note="过期化学品报废")]))
    p.unregistered.append(p.credit_code("630104"))
    w = p.by_kind["workshop"]
    hazardous_shippers = p.by_kind["chemical"] + p.by_kind["smelter"]
    p.fault_plan = [
        ("unregistered", w[-1].credit_code, 6),
        ("no_manifest", w[0].credit_code, 3),
        ("no_manifest", w[1 % len(w)].credit_code, 9),
        ("discrepancy", hazardous_shippers[0].credit_code, 5),
        ("late_receipt", hazardous_shippers[-1].credit_code, 8),
        ("in_transit", hazardous_shippers[len(hazardous_shippers) // 2].credit_code, 12),
    ]
    drafts: list[LedgerDraft] = sorted(previous, key=lambda d: d.credit_code)
    ordered = sorted(p.units, key=lambda x: x.credit_code)
    for m in range(1, months + 1):
        books.reset()
        p.month(books, m)
        for key, kg in books.gen.items():
            p.year_gen[key] += kg
        month = f"{year}-{m:02d}"
        # a unit reports once it holds or handles any waste (carriers and idle collection points do not)
        drafts.extend(_draft(u, month, books, cat, p.streams) for u in ordered if books.codes.get(u.credit_code))
    # a shipment the disposal centre refuses at the gate (packaging broken): nothing moves in the ledgers,
    # the registry keeps the rejected manifest and its follow-on back to the shipper
    chem = p.by_kind["chemical"][-1]
    centre = p.by_kind["hw_centre"][0]
    shipped = date(year, min(7, months), 14)
    p.manifests.append(PlannedManifest(
        p.manifest_no(chem), chem.credit_code, centre.credit_code, p.pick("carrier", chem.credit_code).credit_code,
        shipped.month, shipped, None, [ManifestLine("900-349-34", 1500, None, "D9")], status="rejected", reason="包装破损，拒收退回"))
    p.faults["rejected"].append(p.manifests[-1].number)
    _set_capacities(p, drafts)
    stats = _statistics(p, drafts, cat)
    return City(seed, units, year, p.units, drafts, p.manifests, stats, dict(p.faults), p.unregistered,
                months=months, showcase=p.by_kind["chemical"][0].credit_code,
                medical_institutions=_medical_institutions(p, cat))


def _set_capacities(p: _Planner, drafts: list[LedgerDraft]) -> None:
    """Permits: 1.5 × what each facility receives in the year; the battery recycler gets 80 % (over capacity)."""
    received: dict[str, int] = defaultdict(int)
    for d in drafts:
        for t in d.transfers:
            if t.direction == "in":
                received[d.credit_code] += t.qty_kg
    for u in p.units:
        for permit in u.permits:
            r = received.get(u.credit_code, 0)
            over = u.kind == "battery" and u is p.by_kind["battery"][0]
            cap = r * 8 // 10 if over else max(r * 3 // 2, 100 * T)
            permit["capacity_t"] = str(Decimal(cap // T))
            if over:
                p.faults["over_capacity"].append(u.credit_code)


def _medical_institutions(p: _Planner, cat: Catalogue) -> dict[str, int]:
    """医疗卫生机构总数 per district and the city: the registered hospitals and clinics plus one in twenty that is
    not registered (卫健委 counts every institution), so the coverage rate comes out a little under 100 %."""
    n: dict[str, int] = defaultdict(int)
    for u in p.units:
        if u.unit_type == "medical_institution":
            n[u.district] += 1
            n["630100"] += 1
    return {r: n[r] + n[r] // 20 for r in sorted(cat.districts) if n.get(r)}


def _statistics(p: _Planner, drafts: list[LedgerDraft], cat: Catalogue) -> dict[str, Decimal]:
    """工业增加值 (万元) per district, park and the city: about 1 万元 per 0.6 t of general industrial waste,
    so the intensity comes out near Xining's order of magnitude (t/万元)."""
    gen: dict[str, int] = defaultdict(int)
    where = {u.credit_code: (u.district, u.park) for u in p.units}
    for d in drafts:
        g = sum(s.generated_kg for s in d.stocks if s.stream == "general_industrial")
        dist, park = where[d.credit_code]
        gen[dist] += g
        gen["630100"] += g
        if park:
            gen[park] += g
    out: dict[str, Decimal] = {}
    for region in sorted(cat.districts) + sorted(cat.parks):
        g = gen.get(region, 0)
        out[region] = Decimal(max(g // 600, 1000) if g else 5000)
    return out
