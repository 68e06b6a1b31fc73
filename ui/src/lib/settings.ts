// Turns a SettingInfo into the control that fits it.
import type { SettingInfo } from './backend';
import { APP_LOCK_VALUES, TIMER_VALUES } from './durations';

export type Control = { kind: 'switch' } | { kind: 'select'; options: string[] };

export function controlFor(s: SettingInfo): Control {
  const v = s.values.toLowerCase();
  let options: string[];
  if (/\bimmediately\b/.test(v) || s.key === 'app-lock') options = [...APP_LOCK_VALUES];
  else if (/\d+[smhdw]\b/.test(v)) options = [...TIMER_VALUES];
  else
    options = v
      .split('|')
      .map((x) => x.trim())
      .filter(Boolean);
  if (options.length === 2 && options.includes('on') && options.includes('off'))
    return { kind: 'switch' };
  if (s.value && !options.includes(s.value)) options = [s.value, ...options];
  return { kind: 'select', options };
}
