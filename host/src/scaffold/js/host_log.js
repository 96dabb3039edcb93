export function write(level, message, fields) {
  console.log(`[${level}] ${message}`, Object.fromEntries(fields));
}
