// The version of this Nexus: `nexus version`, and the one a backup records.
export const VERSION = '0.1.0';
