/** ipvsadm's command line, rules text and listings, shared by the `ipvsctl` CLI and GET/PUT /v1/rules. */
export * from './apply.js';
export * from './errors.js';
export * from './format.js';
export * from './list.js';
export * from './options.js';
export * from './save.js';
export * from './sort.js';
