// Parsers of CLI flag values (commander argParsers): a bad value is a one-line usage error.

import { InvalidArgumentError } from 'commander';

export function trueOrFalse(value: string): boolean {
  const v = value.trim().toLowerCase();
  if (v === 'true') return true;
  if (v === 'false') return false;
  throw new InvalidArgumentError('Expected true or false.');
}

export function perSecond(value: string): number {
  const v = value.trim();
  if (!/^\d+(\.\d+)?$/.test(v)) throw new InvalidArgumentError('Expected a number of requests a second, 0 for no limit.');
  return Number(v);
}

export function wholeSeconds(value: string): number {
  if (!/^\d{1,9}$/.test(value.trim())) throw new InvalidArgumentError('Expected a whole number of seconds.');
  return Number(value.trim());
}

export function wholeNumber(min: number, max: number): (value: string) => number {
  return (value) => {
    if (!/^\d{1,9}$/.test(value.trim())) throw new InvalidArgumentError(`Expected a whole number from ${min} to ${max}.`);
    const n = Number(value.trim());
    if (n < min || n > max) throw new InvalidArgumentError(`Expected a whole number from ${min} to ${max}.`);
    return n;
  };
}
