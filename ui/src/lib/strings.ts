// Every user-facing string lives here, ready for translation.
export const strings = {
  appTagline: 'Private messages for people who need them to stay private.',
  loading: 'Starting…',
  versionLabel: (version: string) => `Version ${version}`,
  loadFailed: 'Sotto could not read its own version. Please restart the app.',
} as const;
