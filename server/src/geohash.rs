//! Geohash arithmetic of Redis's geo commands: 52-bit interleaved scores (26 bits of latitude
//! on the even bits, 26 of longitude on the odd ones), over latitudes limited to the Web
//! Mercator range, plus the box search Redis performs (a centre cell at a step chosen from the
//! radius, and its eight neighbours). The order in which cells are visited decides the order of
//! unsorted GEOSEARCH replies, so it follows Redis's.

pub const LONG_MIN: f64 = -180.0;
pub const LONG_MAX: f64 = 180.0;
pub const LAT_MIN: f64 = -85.051_128_78;
pub const LAT_MAX: f64 = 85.051_128_78;
pub const STEP_MAX: u8 = 26;
/// Earth's radius as Redis uses it for distances, in metres.
pub const EARTH_RADIUS: f64 = 6_372_797.560_856;
/// Half the Mercator world's width in metres: radius steps are estimated against it.
const MERCATOR_MAX: f64 = 20_037_726.37;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Hash {
    pub bits: u64,
    pub step: u8,
}

impl Hash {
    fn is_zero(self) -> bool {
        self.bits == 0 && self.step == 0
    }
    /// The hash aligned to 52 bits: the score of the cell's first point.
    pub fn align52(self) -> u64 {
        self.bits << (52 - self.step as u32 * 2)
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Range {
    min: f64,
    max: f64,
}

#[derive(Debug, Clone, Copy, Default)]
struct Area {
    lon: Range,
    lat: Range,
}

const WGS84_LON: Range = Range {
    min: LONG_MIN,
    max: LONG_MAX,
};
const WGS84_LAT: Range = Range {
    min: LAT_MIN,
    max: LAT_MAX,
};

/// Spreads the 32 bits of `x` to the even bit positions of a u64.
fn spread(x: u32) -> u64 {
    let mut x = x as u64;
    x = (x | (x << 16)) & 0x0000_ffff_0000_ffff;
    x = (x | (x << 8)) & 0x00ff_00ff_00ff_00ff;
    x = (x | (x << 4)) & 0x0f0f_0f0f_0f0f_0f0f;
    x = (x | (x << 2)) & 0x3333_3333_3333_3333;
    (x | (x << 1)) & 0x5555_5555_5555_5555
}

/// Gathers the even bits of `x` into a u32 (inverse of `spread`).
fn squash(x: u64) -> u32 {
    let mut x = x & 0x5555_5555_5555_5555;
    x = (x | (x >> 1)) & 0x3333_3333_3333_3333;
    x = (x | (x >> 2)) & 0x0f0f_0f0f_0f0f_0f0f;
    x = (x | (x >> 4)) & 0x00ff_00ff_00ff_00ff;
    x = (x | (x >> 8)) & 0x0000_ffff_0000_ffff;
    ((x | (x >> 16)) & 0x0000_0000_ffff_ffff) as u32
}

/// Latitude and longitude cell numbers interleaved (latitude on the even bits).
fn interleave(lat: u32, lon: u32) -> u64 {
    spread(lat) | (spread(lon) << 1)
}

/// Converts a fraction of 2^step to the cell number, as C's conversion of a double to a
/// 32-bit unsigned integer does for in-range values (truncation).
fn cell(offset: f64) -> u32 {
    offset as u32
}

/// Encodes a point at `step` bits per coordinate over the given ranges; `None` outside the
/// indexable area.
fn encode(lon_r: Range, lat_r: Range, lon: f64, lat: f64, step: u8) -> Option<Hash> {
    if !(LONG_MIN..=LONG_MAX).contains(&lon) || !(LAT_MIN..=LAT_MAX).contains(&lat) {
        return None;
    }
    if lat < lat_r.min || lat > lat_r.max || lon < lon_r.min || lon > lon_r.max {
        return None;
    }
    let scale = (1u64 << step) as f64;
    let lat_off = (lat - lat_r.min) / (lat_r.max - lat_r.min) * scale;
    let lon_off = (lon - lon_r.min) / (lon_r.max - lon_r.min) * scale;
    Some(Hash {
        bits: interleave(cell(lat_off), cell(lon_off)),
        step,
    })
}

/// The score GEOADD gives a point (already checked to be in range).
pub fn encode_score(lon: f64, lat: f64) -> u64 {
    encode(WGS84_LON, WGS84_LAT, lon, lat, STEP_MAX).map_or(0, |h| h.align52())
}

fn decode(lon_r: Range, lat_r: Range, h: Hash) -> Area {
    let lat_cell = squash(h.bits);
    let lon_cell = squash(h.bits >> 1);
    let cells = (1u64 << h.step) as f64;
    let lat_scale = lat_r.max - lat_r.min;
    let lon_scale = lon_r.max - lon_r.min;
    Area {
        lat: Range {
            min: lat_r.min + (lat_cell as f64 / cells) * lat_scale,
            max: lat_r.min + ((lat_cell.wrapping_add(1)) as f64 / cells) * lat_scale,
        },
        lon: Range {
            min: lon_r.min + (lon_cell as f64 / cells) * lon_scale,
            max: lon_r.min + ((lon_cell.wrapping_add(1)) as f64 / cells) * lon_scale,
        },
    }
}

/// The bits of a score as Redis's conversion of a double to a u64 gives them on x86-64, so that
/// scores a geo command never wrote (a plain sorted set) decode to the same points: a negative
/// score wraps, one from 2^64 up (+inf too) is 0, one below -2^63 (-inf too) is 2^63.
fn score_bits(score: f64) -> u64 {
    const TWO63: f64 = 9_223_372_036_854_775_808.0;
    if score >= TWO63 {
        let rest = score - TWO63;
        if rest >= TWO63 {
            0
        } else {
            (rest as i64 as u64) ^ (1 << 63)
        }
    } else if score < -TWO63 {
        1 << 63
    } else {
        score as i64 as u64
    }
}

/// The point a score stands for: the centre of its cell, clamped to the valid ranges.
pub fn decode_score(score: f64) -> (f64, f64) {
    let h = Hash {
        bits: score_bits(score),
        step: STEP_MAX,
    };
    let a = decode(WGS84_LON, WGS84_LAT, h);
    let lon = ((a.lon.min + a.lon.max) / 2.0).clamp(LONG_MIN, LONG_MAX);
    let lat = ((a.lat.min + a.lat.max) / 2.0).clamp(LAT_MIN, LAT_MAX);
    (lon, lat)
}

/// The standard 11-character geohash of a score (GEOHASH): the decoded point re-encoded over
/// the usual latitude range -90..90; the 11th character stands for bits that do not exist.
pub fn geohash_string(score: f64) -> String {
    const ALPHABET: &[u8] = b"0123456789bcdefghjkmnpqrstuvwxyz";
    let (lon, lat) = decode_score(score);
    let lat_r = Range {
        min: -90.0,
        max: 90.0,
    };
    let bits = encode(WGS84_LON, lat_r, lon, lat, STEP_MAX).map_or(0, |h| h.bits);
    (0..11)
        .map(|i| {
            let idx = if i == 10 {
                0
            } else {
                (bits >> (52 - (i + 1) * 5)) & 0x1f
            };
            ALPHABET[idx as usize] as char
        })
        .collect()
}

fn deg_rad(d: f64) -> f64 {
    d * (std::f64::consts::PI / 180.0)
}

fn rad_deg(r: f64) -> f64 {
    r / (std::f64::consts::PI / 180.0)
}

/// Distance along a meridian between two latitudes, in metres.
pub fn lat_distance(lat1: f64, lat2: f64) -> f64 {
    EARTH_RADIUS * (deg_rad(lat2) - deg_rad(lat1)).abs()
}

/// Haversine distance in metres.
pub fn distance(lon1: f64, lat1: f64, lon2: f64, lat2: f64) -> f64 {
    let (lon1r, lon2r) = (deg_rad(lon1), deg_rad(lon2));
    let v = ((lon2r - lon1r) / 2.0).sin();
    // Same longitude: the distance is along the meridian (cheaper, and what Redis returns).
    if v == 0.0 {
        return lat_distance(lat1, lat2);
    }
    let (lat1r, lat2r) = (deg_rad(lat1), deg_rad(lat2));
    let u = ((lat2r - lat1r) / 2.0).sin();
    let a = u * u + lat1r.cos() * lat2r.cos() * v * v;
    2.0 * EARTH_RADIUS * a.sqrt().asin()
}

/// The area a search covers, in metres (already multiplied by the unit).
#[derive(Debug, Clone, Copy)]
pub enum Shape {
    Radius(f64),
    /// Width and height.
    Box(f64, f64),
}

/// A search: its centre and area, and the unit factor distances are reported in.
#[derive(Debug, Clone, Copy)]
pub struct Search {
    pub lon: f64,
    pub lat: f64,
    pub shape: Shape,
}

impl Search {
    /// The distance of a point from the centre if it is inside the area.
    pub fn within(&self, lon: f64, lat: f64) -> Option<f64> {
        match self.shape {
            Shape::Radius(r) => {
                let d = distance(self.lon, self.lat, lon, lat);
                (d <= r).then_some(d)
            }
            Shape::Box(w, h) => {
                if lat_distance(lat, self.lat) > h / 2.0 {
                    return None;
                }
                if distance(lon, lat, self.lon, lat) > w / 2.0 {
                    return None;
                }
                Some(distance(self.lon, self.lat, lon, lat))
            }
        }
    }

    /// Longitude/latitude bounds of the area: [min lon, min lat, max lon, max lat].
    fn bounds(&self) -> [f64; 4] {
        let (half_h, half_w) = match self.shape {
            Shape::Radius(r) => (r, r),
            Shape::Box(w, h) => (h / 2.0, w / 2.0),
        };
        let lat_delta = rad_deg(half_h / EARTH_RADIUS);
        let lon_delta_top = rad_deg(half_w / EARTH_RADIUS / deg_rad(self.lat + lat_delta).cos());
        let lon_delta_bottom = rad_deg(half_w / EARTH_RADIUS / deg_rad(self.lat - lat_delta).cos());
        // The wider edge is the one nearer the equator.
        let lon_delta = if self.lat < 0.0 {
            lon_delta_bottom
        } else {
            lon_delta_top
        };
        [
            self.lon - lon_delta,
            self.lat - lat_delta,
            self.lon + lon_delta,
            self.lat + lat_delta,
        ]
    }

    /// The score ranges `[min, max)` to scan, in the order Redis scans them: the centre cell,
    /// then north, south, east, west, north-east, north-west, south-east, south-west (cells
    /// the area cannot reach are left out, and a cell equal to the one scanned just before is
    /// skipped).
    pub fn score_ranges(&self) -> Vec<(u64, u64)> {
        let b = self.bounds();
        let (min_lon, min_lat, max_lon, max_lat) = (b[0], b[1], b[2], b[3]);
        let radius = match self.shape {
            Shape::Radius(r) => r,
            Shape::Box(w, h) => ((w / 2.0) * (w / 2.0) + (h / 2.0) * (h / 2.0)).sqrt(),
        };
        let mut step = estimate_step(radius, self.lat);
        let mut centre = encode(WGS84_LON, WGS84_LAT, self.lon, self.lat, step)
            .unwrap_or(Hash { bits: 0, step });
        let mut n = neighbours(centre);
        let mut area = decode(WGS84_LON, WGS84_LAT, centre);
        // Near a cell edge the step may be too fine for the neighbours to cover the area.
        let north = decode(WGS84_LON, WGS84_LAT, n[0]);
        let south = decode(WGS84_LON, WGS84_LAT, n[1]);
        let east = decode(WGS84_LON, WGS84_LAT, n[2]);
        let west = decode(WGS84_LON, WGS84_LAT, n[3]);
        let too_fine = north.lat.max < max_lat
            || south.lat.min > min_lat
            || east.lon.max < max_lon
            || west.lon.min > min_lon;
        if step > 1 && too_fine {
            step -= 1;
            centre = encode(WGS84_LON, WGS84_LAT, self.lon, self.lat, step)
                .unwrap_or(Hash { bits: 0, step });
            n = neighbours(centre);
            area = decode(WGS84_LON, WGS84_LAT, centre);
        }
        // Drop neighbours on a side the area does not reach.
        if step >= 2 {
            let zero = Hash::default();
            let [north, south, east, west, ne, nw, se, sw] = &mut n;
            if area.lat.min < min_lat {
                (*south, *sw, *se) = (zero, zero, zero);
            }
            if area.lat.max > max_lat {
                (*north, *ne, *nw) = (zero, zero, zero);
            }
            if area.lon.min < min_lon {
                (*west, *sw, *nw) = (zero, zero, zero);
            }
            if area.lon.max > max_lon {
                (*east, *se, *ne) = (zero, zero, zero);
            }
        }
        let cells = [centre, n[0], n[1], n[2], n[3], n[4], n[5], n[6], n[7]];
        let mut out = Vec::new();
        // Redis compares with the last scanned cell only once a cell other than the centre
        // has been scanned.
        let mut last: usize = 0;
        for (i, c) in cells.iter().enumerate() {
            if c.is_zero() {
                continue;
            }
            if last != 0 && *c == cells[last] {
                continue;
            }
            let next = Hash {
                bits: c.bits + 1,
                step: c.step,
            };
            out.push((c.align52(), next.align52()));
            last = i;
        }
        out
    }
}

/// The geohash step (bits per coordinate) whose cells are about as large as the radius.
fn estimate_step(mut range: f64, lat: f64) -> u8 {
    if range == 0.0 {
        return STEP_MAX;
    }
    let mut step: i32 = 1;
    while range < MERCATOR_MAX {
        range *= 2.0;
        step += 1;
    }
    step -= 2;
    // Cells narrow towards the poles.
    if !(-66.0..=66.0).contains(&lat) {
        step -= 1;
        if !(-80.0..=80.0).contains(&lat) {
            step -= 1;
        }
    }
    step.clamp(1, STEP_MAX as i32) as u8
}

fn move_x(h: Hash, d: i8) -> Hash {
    let x = h.bits & 0xaaaa_aaaa_aaaa_aaaa;
    let y = h.bits & 0x5555_5555_5555_5555;
    let shift = 64 - h.step as u32 * 2;
    let zz = 0x5555_5555_5555_5555u64 >> shift;
    let x = if d > 0 {
        x.wrapping_add(zz + 1)
    } else {
        (x | zz).wrapping_sub(zz + 1)
    };
    Hash {
        bits: (x & (0xaaaa_aaaa_aaaa_aaaau64 >> shift)) | y,
        step: h.step,
    }
}

fn move_y(h: Hash, d: i8) -> Hash {
    let x = h.bits & 0xaaaa_aaaa_aaaa_aaaa;
    let y = h.bits & 0x5555_5555_5555_5555;
    let shift = 64 - h.step as u32 * 2;
    let zz = 0xaaaa_aaaa_aaaa_aaaau64 >> shift;
    let y = if d > 0 {
        y.wrapping_add(zz + 1)
    } else {
        (y | zz).wrapping_sub(zz + 1)
    };
    Hash {
        bits: x | (y & (0x5555_5555_5555_5555u64 >> shift)),
        step: h.step,
    }
}

/// The eight neighbours: north, south, east, west, north-east, north-west, south-east,
/// south-west.
fn neighbours(h: Hash) -> [Hash; 8] {
    [
        move_y(h, 1),
        move_y(h, -1),
        move_x(h, 1),
        move_x(h, -1),
        move_y(move_x(h, 1), 1),
        move_y(move_x(h, -1), 1),
        move_y(move_x(h, 1), -1),
        move_y(move_x(h, -1), -1),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interleave_round_trips() {
        for v in [0u32, 1, 0x3ff_ffff, 0x155_5555, 12345] {
            assert_eq!(squash(spread(v)), v);
            assert_eq!(squash(interleave(7, v) >> 1), v);
        }
    }
}
