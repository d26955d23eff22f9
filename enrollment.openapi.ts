// The OpenAPI 3.1 description of enrollment.ts, served at GET /openapi.json (and by the gateway at
// /openapi/enrollment.json). The validators in enrollment.ts stay the rules; this says the same,
// and the tests hold the two together (the routes at start-up, the rest with Schemathesis).
import { WAITLIST_LIMIT, WAITLISTS_PER_STUDENT } from './lib/limits.ts';
import { body, document, errors, json, noContent, usernameSchema, withRoles } from './lib/openapi.ts';

const ANYONE = ['Student', 'Instructor', 'Registrar'];
const STAFF = ['Instructor', 'Registrar'];
const id = (name: string, what: string) => ({ name, in: 'path', required: true, description: what, schema: { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER } });
const sectionId = id('id', 'a section');
const username = usernameSchema;
const text = { type: 'string' };
const count = { type: 'integer', minimum: 0 };
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const list = (key: string, item: object, extra: Record<string, object> = {}) => ({
  type: 'object',
  required: [key, ...Object.keys(extra)],
  properties: { ...extra, [key]: { type: 'array', items: item } },
});
const sectionFields = {
  id: count, section_number: count, instructor: text, capacity: count, enrolled: count, waitlist_length: count, seats_left: count,
};
const placeFields = { section_id: count, class_id: count, department: text, course_code: text, title: text, section_number: count, instructor: text };
const staffList = (summary: string, key: string, item: object) =>
  withRoles(STAFF, {
    summary,
    description: 'Instructors see the sections they teach; the Registrar, any section.',
    parameters: [sectionId],
    responses: { 200: json(list(key, item, { section_id: count })), ...errors(401, 403, 404, 422) },
  });

export const enrollmentDocument = document(
  'Enrollment service',
  'Classes, sections, enrollment and waitlists for students, instructors and the registrar. The caller is the bearer token: its sub and roles. Every error is problem JSON. A write sent with an `Idempotency-Key` header (1 to 255 visible ASCII characters, kept a day) is carried out once: sent again with the same key, it gets the first answer (header `Idempotent-Replayed: true`), so a client (and the gateway) may resend a write whose answer was lost.',
  {
    '/classes': {
      get: withRoles(ANYONE, { summary: 'Every class with the sections it offers', responses: { 200: json(list('classes', ref('Class'))), ...errors(401, 403) } }),
      post: withRoles(['Registrar'], {
        summary: 'Add a class',
        requestBody: body({
          department: { type: 'string', minLength: 2, maxLength: 8, pattern: '^[A-Za-z]+$' },
          course_code: { type: 'string', minLength: 1, maxLength: 8, pattern: '^[0-9A-Za-z]+$' },
          title: { type: 'string', minLength: 1, maxLength: 200, description: 'Trimmed; no control characters.' },
        }),
        responses: { 201: json(ref('Class'), 'Added', { Location: { schema: text } }), ...errors(400, 401, 403, 409, 413, 415, 422) },
      }),
    },
    '/classes/{id}': {
      get: withRoles(ANYONE, { summary: 'One class', parameters: [id('id', 'a class')], responses: { 200: json(ref('Class')), ...errors(401, 403, 404, 422) } }),
    },
    '/sections': {
      post: withRoles(['Registrar'], {
        summary: 'Add a section to a class',
        requestBody: body({
          class_id: { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER },
          section_number: { type: 'integer', minimum: 1, maximum: 99 },
          capacity: { type: 'integer', minimum: 1, maximum: 500 },
          instructor: username,
        }),
        responses: { 201: json(ref('Section'), 'Added', { Location: { schema: text } }), ...errors(400, 401, 403, 404, 409, 413, 415, 422) },
      }),
    },
    '/sections/{id}': {
      get: withRoles(ANYONE, { summary: 'One section on offer', parameters: [sectionId], responses: { 200: json(ref('Section')), ...errors(401, 403, 404, 422) } }),
      delete: withRoles(['Registrar'], {
        summary: 'Remove a section',
        description: 'Its enrollments become drops ("section removed") and its waitlist is cleared.',
        parameters: [sectionId],
        responses: { 204: noContent, ...errors(401, 403, 404, 409, 422) },
      }),
    },
    '/sections/{id}/students': { get: staffList('Who is enrolled in a section', 'students', { type: 'object', required: ['username', 'enrolled_at'], properties: { username: text, enrolled_at: text } }) },
    '/sections/{id}/dropped': {
      get: staffList('Who dropped a section, and who got the seat', 'dropped', {
        type: 'object',
        required: ['username', 'dropped_at', 'dropped_by', 'reason', 'promoted'],
        properties: { username: text, dropped_at: text, dropped_by: text, reason: { enum: ['self', 'administrative', 'section removed'] }, promoted: { type: ['string', 'null'] } },
      }),
    },
    '/sections/{id}/waitlist': {
      get: staffList("A section's waitlist, in order", 'waitlist', { type: 'object', required: ['position', 'username', 'joined_at'], properties: { position: count, username: text, joined_at: text } }),
    },
    '/sections/{id}/students/{username}': {
      delete: withRoles(STAFF, {
        summary: 'Drop a student (administratively); the first on the waitlist gets the seat',
        parameters: [sectionId, { name: 'username', in: 'path', required: true, schema: username }],
        responses: { 204: noContent, ...errors(401, 403, 404, 422) },
      }),
    },
    '/sections/{id}/instructor': {
      put: withRoles(['Registrar'], {
        summary: "Change a section's instructor",
        parameters: [sectionId],
        requestBody: body({ instructor: username }),
        responses: { 200: json(ref('Section')), ...errors(400, 401, 403, 404, 409, 413, 415, 422) },
      }),
    },
    '/auto-enrollment': {
      get: withRoles(ANYONE, { summary: 'Whether automatic enrollment from waitlists is frozen', responses: { 200: json({ type: 'object', required: ['frozen'], properties: { frozen: { type: 'boolean' } } }), ...errors(401, 403) } }),
      put: withRoles(['Registrar'], {
        summary: 'Freeze or unfreeze automatic enrollment; unfreezing fills the free seats',
        requestBody: body({ frozen: { type: 'boolean' } }),
        responses: {
          200: json({ type: 'object', required: ['frozen', 'promoted'], properties: { frozen: { type: 'boolean' }, promoted: count } }),
          ...errors(400, 401, 403, 413, 415, 422),
        },
      }),
    },
    '/me/enrollments': {
      get: withRoles(['Student'], { summary: 'My enrollments', responses: { 200: json(list('enrollments', { type: 'object', properties: { ...placeFields, enrolled_at: text } })), ...errors(401, 403) } }),
      post: withRoles(['Student'], {
        summary: 'Enroll in a section, or join its waitlist when it is full',
        description: `A seat if one is free and nobody waits (201); else the waitlist (202), if it holds fewer than ${WAITLIST_LIMIT} and I am on fewer than ${WAITLISTS_PER_STUDENT}.`,
        requestBody: body({ section_id: { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER } }),
        responses: {
          201: json({ type: 'object', required: ['section_id', 'status'], properties: { section_id: count, status: { const: 'enrolled' } } }, 'Enrolled'),
          202: json({ type: 'object', required: ['section_id', 'status', 'position'], properties: { section_id: count, status: { const: 'waitlisted' }, position: count } }, 'Waitlisted'),
          ...errors(400, 401, 403, 404, 409, 413, 415, 422),
        },
      }),
    },
    '/me/enrollments/{sectionId}': {
      delete: withRoles(['Student'], { summary: 'Drop a section; the first on its waitlist gets the seat', parameters: [id('sectionId', 'a section')], responses: { 204: noContent, ...errors(401, 403, 404, 422) } }),
    },
    '/me/waitlist': {
      get: withRoles(['Student'], {
        summary: 'The waitlists I am on',
        responses: { 200: json(list('waitlist', { type: 'object', properties: { ...placeFields, position: count, waitlist_length: count, joined_at: text } })), ...errors(401, 403) },
      }),
    },
    '/me/waitlist/{sectionId}': {
      delete: withRoles(['Student'], { summary: 'Leave a waitlist; those behind move up', parameters: [id('sectionId', 'a section')], responses: { 204: noContent, ...errors(401, 403, 404, 422) } }),
    },
    '/me/sections': {
      get: withRoles(['Instructor'], { summary: 'The sections I teach', responses: { 200: json(list('sections', ref('Section'))), ...errors(401, 403) } }),
    },
    '/health': {
      get: { summary: 'Whether the database answers', responses: { 200: json({ type: 'object', required: ['status'], properties: { status: { const: 'ok' } } }) } },
    },
  },
  {
    Section: {
      type: 'object',
      required: ['class_id', 'department', 'course_code', 'title', ...Object.keys(sectionFields)],
      properties: { ...sectionFields, class_id: count, department: text, course_code: text, title: text },
    },
    Class: {
      type: 'object',
      required: ['id', 'department', 'course_code', 'title', 'sections'],
      properties: {
        id: count,
        department: text,
        course_code: text,
        title: text,
        sections: { type: 'array', items: { type: 'object', required: Object.keys(sectionFields), properties: sectionFields } },
      },
    },
  },
);
