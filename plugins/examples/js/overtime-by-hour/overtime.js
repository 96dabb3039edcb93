// overtime-by-hour: a transform plugin in JavaScript.
//
// Payroll pays hours worked late at night at an overtime rate, and wants the punches of
// those hours marked as such. This transform turns a check-in made in the overtime hours
// (device-local time) into an over-time-in, and a check-out into an over-time-out. Other
// punches and other events pass unchanged.
//
// Config (`[plugins.<name>.config]`, both optional, whole hours 0-23 of the device's
// local day):
// - `overtime_from`: the first overtime hour (default 18: from 18:00).
// - `overtime_until`: the first hour that is not overtime any more (default 6: until 06:00).
// A bad value rejects the punch with the reason (dead-lettered; fix the config and replay).

import { get } from 'biogate:plugin/config@0.1.0';

const RENAMED = { 'check-in': 'over-time-in', 'check-out': 'over-time-out' };

function hourSetting(key, fallback) {
  const text = get(key);
  if (text === undefined) return fallback;
  const hour = Number(text.trim());
  if (!Number.isInteger(hour) || hour < 0 || hour > 23) {
    throw { tag: 'reject', val: `config ${key} must be a whole hour from 0 to 23, not "${text}"` };
  }
  return hour;
}

/// The device-local hour of a device time (unix seconds as a BigInt, offset in minutes).
export function localHour(logTime) {
  const localSeconds = Number(logTime.unixSeconds) + logTime.utcOffsetMinutes * 60;
  return new Date(localSeconds * 1000).getUTCHours();
}

/// Whether `hour` is in [from, until), a range that may wrap past midnight.
export function isOvertime(hour, from, until) {
  return from <= until ? hour >= from && hour < until : hour >= from || hour < until;
}

export const transformer = {
  transform(event) {
    if (event.body.tag !== 'punch') return [event];
    const punch = event.body.val;
    const renamed = RENAMED[punch.punchType];
    if (renamed === undefined) return [event];
    const from = hourSetting('overtime_from', 18);
    const until = hourSetting('overtime_until', 6);
    if (isOvertime(localHour(punch.logTime), from, until)) punch.punchType = renamed;
    return [event];
  },
};
