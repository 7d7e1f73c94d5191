// DOM helpers shared by the pages: elements without innerHTML (text is always text), forms
// whose API errors land on the field they name, tables, and a status line for screen readers.

import { ApiError } from './api.js';

/** Creates an element: `h('a', {href: '/x', class: 'btn'}, 'text', child, [more])`. */
export function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      element.addEventListener(key.slice(2), value);
    } else if (key === 'class') {
      element.className = value;
    } else if (key === 'text') {
      element.textContent = value;
    } else if (key in element && typeof value !== 'string') {
      element[key] = value;
    } else {
      element.setAttribute(key, value === true ? '' : value);
    }
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces the children of `element`. */
export function replace(element, ...children) {
  element.replaceChildren();
  append(element, children);
  return element;
}

let toastTimer;
/** Announces `message` in the status line (read by screen readers). */
export function toast(message) {
  const box = document.getElementById('toast');
  box.textContent = message;
  box.classList.add('shown');
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => box.classList.remove('shown'), 5000);
}

/** A date-time in the reader's locale, or an em dash. */
export function when(value) {
  if (value === null || value === undefined || value === '') return '—';
  const date = typeof value === 'number' ? new Date(value) : new Date(value);
  return Number.isNaN(date.getTime()) ? String(value) : date.toLocaleString();
}

/** An error box (role=alert) for a failed load. */
export function errorBox(error) {
  return h('p', { class: 'error', role: 'alert' }, describe(error));
}

/** A human sentence for an error, naming the field when the API named one. */
export function describe(error) {
  if (error instanceof ApiError) {
    return error.field ? `${error.field}: ${error.message}` : error.message;
  }
  return String(error && error.message ? error.message : error);
}

let fieldSeq = 0;

/**
 * A form. `fields`: [{name, label, type, value, options: [[value, label]], required, help,
 * rows, autocomplete, placeholder}]; `onSubmit(values, form)` may throw an ApiError, whose
 * field (matched by name, or by its last dotted part) gets the message. `disabled` makes it
 * read-only (the role cannot change it) and hides the submit button.
 */
export function form({ fields, submit, onSubmit, disabled = false, className = 'stack', extra = null }) {
  const inputs = new Map();
  const summary = h('p', { class: 'error', role: 'alert', hidden: true });
  const rows = fields.map((field) => {
    const id = `f${++fieldSeq}-${field.name.replace(/[^a-zA-Z0-9]/g, '-')}`;
    const help = field.help ? h('small', { id: `${id}-help`, class: 'help' }, field.help) : null;
    const error = h('small', { id: `${id}-error`, class: 'field-error', hidden: true });
    let input;
    const common = {
      id,
      name: field.name,
      required: field.required || false,
      disabled,
      autocomplete: field.autocomplete || null,
      placeholder: field.placeholder || null,
      'aria-describedby': [help ? `${id}-help` : null, `${id}-error`].filter(Boolean).join(' '),
    };
    if (field.type === 'select') {
      input = h('select', common, field.options.map(([value, label]) =>
        h('option', { value, selected: String(value) === String(field.value ?? '') }, label)));
    } else if (field.type === 'textarea') {
      input = h('textarea', { ...common, rows: field.rows || 4 });
      input.value = field.value ?? '';
    } else if (field.type === 'checkbox') {
      input = h('input', { ...common, type: 'checkbox', checked: Boolean(field.value) });
    } else {
      input = h('input', { ...common, type: field.type || 'text', value: field.value ?? '',
        min: field.min ?? null, max: field.max ?? null, accept: field.accept || null });
    }
    inputs.set(field.name, { input, error, field });
    const label = h('label', { for: id }, field.label, field.required ? h('span', { class: 'req', 'aria-hidden': 'true' }, ' *') : null);
    return h('div', { class: field.type === 'checkbox' ? 'field check' : 'field' },
      field.type === 'checkbox' ? [input, label] : [label, input], help, error);
  });
  const button = disabled ? null : h('button', { type: 'submit', class: 'primary' }, submit || 'Save');
  const element = h('form', { class: className, novalidate: true }, summary, rows, extra, button ? h('div', { class: 'actions' }, button) : null);

  function clear() {
    summary.hidden = true;
    for (const { input, error } of inputs.values()) {
      error.hidden = true;
      error.textContent = '';
      input.removeAttribute('aria-invalid');
    }
  }

  function show(error) {
    const name = error instanceof ApiError ? error.field : null;
    const target = name && (inputs.get(name) || inputs.get(name.split('.').pop()) ||
      [...inputs.values()].find((entry) => entry.field.apiField === name));
    if (target) {
      target.error.textContent = error.message;
      target.error.hidden = false;
      target.input.setAttribute('aria-invalid', 'true');
      target.input.focus();
    } else {
      summary.textContent = describe(error);
      summary.hidden = false;
      summary.focus?.();
    }
  }

  element.addEventListener('submit', async (event) => {
    event.preventDefault();
    clear();
    // Required fields are checked here, so the message names the field like the API does.
    for (const { input, error, field } of inputs.values()) {
      if (field.required && field.type !== 'checkbox' && !input.value.trim()) {
        error.textContent = `${field.label} is required`;
        error.hidden = false;
        input.setAttribute('aria-invalid', 'true');
        input.focus();
        return;
      }
    }
    const values = {};
    for (const [name, { input, field }] of inputs) {
      values[name] = field.type === 'checkbox' ? input.checked : (field.type === 'file' ? input.files : input.value);
    }
    if (button) button.disabled = true;
    try {
      await onSubmit(values, element);
    } catch (error) {
      show(error);
    } finally {
      if (button) button.disabled = false;
    }
  });
  element.showError = show;
  element.inputs = inputs;
  return element;
}

/** A table: `columns` = [[header, row => cell]]; `empty` is shown when there are no rows. */
export function table(columns, rows, { caption, empty = 'Nothing yet.' } = {}) {
  if (!rows || rows.length === 0) return h('p', { class: 'empty' }, empty);
  return h('div', { class: 'table-wrap' },
    h('table', {},
      caption ? h('caption', {}, caption) : null,
      h('thead', {}, h('tr', {}, columns.map(([title]) => h('th', { scope: 'col' }, title)))),
      h('tbody', {}, rows.map((row) => h('tr', {}, columns.map(([, cell]) => h('td', {}, cell(row))))))));
}

/** A button that asks once more inline before running `action` (no modal dialogs). */
export function confirmButton(label, confirmLabel, action) {
  const button = h('button', { type: 'button', class: 'danger' }, label);
  let armed = false;
  button.addEventListener('click', async () => {
    if (!armed) {
      armed = true;
      button.textContent = confirmLabel;
      setTimeout(() => { armed = false; button.textContent = label; }, 4000);
      return;
    }
    button.disabled = true;
    try {
      await action();
    } catch (error) {
      toast(describe(error));
      button.disabled = false;
    }
  });
  return button;
}

/** A titled section. */
export function section(title, ...children) {
  return h('section', { class: 'card', 'aria-label': title }, h('h2', {}, title), children);
}

/** A notice that the caller's role can read but not change this. */
export function readOnlyNote(role, needed = 'admin') {
  return h('p', { class: 'note', role: 'note' }, `Your role (${role}) can view this page; changing it needs the ${needed} role.`);
}

/** A secret shown once, right after creation, with a copy button. */
export function secretOnce(label, value) {
  const box = h('input', { type: 'text', readonly: true, value, class: 'secret', 'aria-label': label });
  const copy = h('button', { type: 'button', onclick: async () => {
    try {
      await navigator.clipboard.writeText(value);
      toast('Copied.');
    } catch {
      box.select();
    }
  } }, 'Copy');
  return h('div', { class: 'once', role: 'alert' },
    h('p', {}, h('strong', {}, label), ' — shown only now. Store it somewhere safe: it cannot be shown again.'),
    h('div', { class: 'row' }, box, copy));
}
