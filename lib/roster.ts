// The development population, shared by both seeds so that usernames match across the two
// services' databases. Every seeded account has the password DEV_PASSWORD.
export const DEV_PASSWORD = 'dev-password';

export const REGISTRARS = ['registrar'];

export const INSTRUCTORS = [
  'alvarez', 'brooks', 'chen', 'dubois', 'evans', 'fischer', 'garcia', 'hughes', 'ito', 'jensen', 'kowalski', 'lindqvist',
].map((name) => `prof.${name}`);

export const STUDENTS = Array.from({ length: 120 }, (_, index) => `student${String(index + 1).padStart(3, '0')}`);
