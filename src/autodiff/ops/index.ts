/** Registers every op family with the registry (import for side effects). */
import './activation.js';
import './arithmetic.js';
import './indexing.js';
import './logical.js';
import './matrices.js';
import './normalization.js';
import './recurrent.js';
import './reduction.js';
import './shape.js';
