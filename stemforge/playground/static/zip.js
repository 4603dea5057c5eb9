// A store-only ZIP writer (no compression: WAVs barely compress), enough for "download all".
// PKWARE APPNOTE 6.3: local file headers, central directory, end of central directory; UTF-8
// names (flag bit 11); no ZIP64, so each file and the whole archive stay under 4 GiB.

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** CRC-32 (IEEE 802.3) of a Uint8Array. */
export function crc32(bytes) {
  let crc = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) crc = CRC_TABLE[(crc ^ bytes[i]) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

function dosDateTime(date) {
  const year = Math.max(1980, date.getFullYear());
  const time = (date.getHours() << 11) | (date.getMinutes() << 5) | Math.floor(date.getSeconds() / 2);
  const day = ((year - 1980) << 9) | ((date.getMonth() + 1) << 5) | date.getDate();
  return { time, day };
}

const LIMIT = 0xffffffff;

/**
 * A ZIP archive (Uint8Array) of `files`: [{name, data}] where data is a Uint8Array or a string
 * (written as UTF-8). Names must be unique, relative, and use "/" between folders.
 */
export function zipStore(files, date = new Date()) {
  const encoder = new TextEncoder();
  const { time, day } = dosDateTime(date);
  const seen = new Set();
  const entries = files.map(({ name, data }) => {
    if (!name || name.startsWith("/") || name.split("/").includes("..")) throw new Error(`bad zip entry name: ${name}`);
    if (seen.has(name)) throw new Error(`duplicate zip entry: ${name}`);
    seen.add(name);
    const bytes = typeof data === "string" ? encoder.encode(data) : new Uint8Array(data);
    if (bytes.length >= LIMIT) throw new Error(`${name} is too large for a zip without ZIP64`);
    return { name: encoder.encode(name), bytes, crc: crc32(bytes) };
  });

  const localSize = entries.reduce((sum, e) => sum + 30 + e.name.length + e.bytes.length, 0);
  const centralSize = entries.reduce((sum, e) => sum + 46 + e.name.length, 0);
  const total = localSize + centralSize + 22;
  if (total >= LIMIT || entries.length > 0xffff) throw new Error("too much for a zip without ZIP64");

  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  let at = 0;
  const u16 = (v) => { view.setUint16(at, v, true); at += 2; };
  const u32 = (v) => { view.setUint32(at, v >>> 0, true); at += 4; };
  const put = (bytes) => { out.set(bytes, at); at += bytes.length; };
  const UTF8 = 0x0800;

  const offsets = [];
  for (const e of entries) {
    offsets.push(at);
    u32(0x04034b50); u16(20); u16(UTF8); u16(0); u16(time); u16(day);
    u32(e.crc); u32(e.bytes.length); u32(e.bytes.length); u16(e.name.length); u16(0);
    put(e.name); put(e.bytes);
  }
  const centralStart = at;
  entries.forEach((e, i) => {
    u32(0x02014b50); u16(20); u16(20); u16(UTF8); u16(0); u16(time); u16(day);
    u32(e.crc); u32(e.bytes.length); u32(e.bytes.length); u16(e.name.length);
    u16(0); u16(0); u16(0); u16(0); u32(0); u32(offsets[i]);
    put(e.name);
  });
  const centralLength = at - centralStart;
  u32(0x06054b50); u16(0); u16(0); u16(entries.length); u16(entries.length);
  u32(centralLength); u32(centralStart); u16(0);
  return out;
}
