/** Faithfulness and localisation metrics of CAM maps (Average Drop / Increase, deletion / insertion, ROAD, localisation error). */
export { annotationXml, classResolver, parseAnnotation, type AnnotatedObject, type Annotation, type Box } from './boxes.ts';
export { auc, BASELINES, baselineInput, changedAt, DEFAULT_STEPS, isBaseline, perturbedInput, pixelOrder, type Baseline } from './deletion-insertion.ts';
export { averageDrop, explanationInput, increaseInConfidence, normalise, type ConfidencePair } from './drop-increase.ts';
export { evaluateImage, summarise, type EvaluateOptions, type ImageEvaluation, type MethodEvaluation, type MethodSummary, type RoadEvaluation } from './evaluate.ts';
export { imputeRemoved, percentile, ROAD_NOISE, ROAD_PERCENTILES, roadRemoved, type Imputation, type RoadOrder } from './road.ts';
export { boxFromMap, boxToPicture, iou, IOU_THRESHOLD, localisedWithin, LOCALISATION_THRESHOLD, type LocalisationTruth } from './localisation.ts';
