/**
 * The C library number and address parsers ipvsadm relies on, with their exact acceptance rules:
 * `strtol(s, &end, 10)` as used by `string_to_number`, `atoi`, and glibc's `inet_aton` (which takes
 * `a`, `a.b`, `a.b.c` and `a.b.c.d` forms with decimal, octal and hex parts).
 */

const SPACE = new Set([' ', '\t', '\n', '\v', '\f', '\r']);

/** glibc `isspace` in the C locale. */
export function isSpace(c: string | undefined): boolean {
  return c !== undefined && SPACE.has(c);
}

function isDigit(c: string | undefined): boolean {
  return c !== undefined && c >= '0' && c <= '9';
}

/**
 * `strtol(s, &end, 10)` that must consume the whole string (`*end == '\0' && end != s`): leading
 * white space and a sign are allowed. Returns undefined when ipvsadm would reject the text.
 * Values beyond a 64-bit long (ERANGE) are rejected too.
 */
export function strtolWhole(s: string): number | undefined {
  let i = 0;
  while (isSpace(s[i])) i++;
  let negative = false;
  if (s[i] === '+' || s[i] === '-') {
    negative = s[i] === '-';
    i++;
  }
  const start = i;
  while (isDigit(s[i])) i++;
  if (i === start || i !== s.length) return undefined;
  const value = BigInt(s.slice(start, i)) * (negative ? -1n : 1n);
  if (value > 9223372036854775807n || value < -9223372036854775808n) return undefined;
  return Number(value);
}

/** ipvsadm's `string_to_number(s, min, max)`: the value, or undefined for ipvsadm's -1. */
export function stringToNumber(s: string, min: number, max: number): number | undefined {
  const n = strtolWhole(s);
  return n !== undefined && n >= min && n <= max ? n : undefined;
}

/** `atoi`: leading white space, a sign, then as many digits as there are; 0 when none. */
export function atoi(s: string): number {
  const m = /^[ \t\n\v\f\r]*([+-]?)([0-9]*)/.exec(s);
  if (!m || m[2] === '') return 0;
  const n = Number(m[2].slice(0, 12)) * (m[1] === '-' ? -1 : 1);
  return n | 0;
}

/** `strtoul(cp, &end, 0)` for a string that starts with a digit: [value, characters used]. */
function strtoulAuto(s: string, from: number): [number, number] {
  let i = from;
  let base = 10;
  if (s[i] === '0' && (s[i + 1] === 'x' || s[i + 1] === 'X') && /[0-9a-fA-F]/.test(s[i + 2] ?? '')) {
    base = 16;
    i += 2;
  } else if (s[i] === '0') {
    base = 8;
  }
  const digit = base === 16 ? /[0-9a-fA-F]/ : base === 8 ? /[0-7]/ : /[0-9]/;
  const start = i;
  while (i < s.length && digit.test(s[i])) i++;
  const text = s.slice(start, i);
  const value = text === '' ? 0 : parseInt(text.slice(0, 40), base);
  return [value, i];
}

/**
 * glibc `inet_aton`: the address as a host-order u32, or undefined. Trailing text after white space
 * is ignored, as glibc does.
 */
export function inetAton(s: string): number | undefined {
  const parts: number[] = [];
  let i = 0;
  let val: number;
  for (;;) {
    if (!isDigit(s[i])) return undefined;
    [val, i] = strtoulAuto(s, i);
    if (val > 0xffffffff) return undefined;
    if (s[i] === '.') {
      if (parts.length > 2 || val > 0xff) return undefined;
      parts.push(val);
      i++;
    } else {
      break;
    }
  }
  if (i < s.length && !isSpace(s[i])) return undefined;
  switch (parts.length) {
    case 0:
      return val >>> 0;
    case 1:
      if (val > 0xffffff) return undefined;
      return ((parts[0] << 24) | val) >>> 0;
    case 2:
      if (val > 0xffff) return undefined;
      return ((parts[0] << 24) | (parts[1] << 16) | val) >>> 0;
    default:
      if (val > 0xff) return undefined;
      return ((parts[0] << 24) | (parts[1] << 16) | (parts[2] << 8) | val) >>> 0;
  }
}

/** `(int)` of a u32, as `%d` prints it. */
export function int32(u: number): number {
  return u | 0;
}
